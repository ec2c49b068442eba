"""make bench-peers: the scenarios with the Python azure-batch SDK (Debian's,
13.x on msrest, the one az uses), one process per scenario. Endpoint and
Shared Key from the environment, as for azbatch.

    /usr/bin/python3 python_sdk.py SCENARIO ARGS...   (the arguments of azbatch.lua)
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials
import azure.batch.models as m

env = os.environ
client = BatchServiceClient(SharedKeyCredentials(env["AZURE_BATCH_ACCOUNT"], env["AZURE_BATCH_ACCESS_KEY"]),
                            batch_url=env["AZURE_BATCH_ENDPOINT"])
scenario, args = sys.argv[1], sys.argv[2:]


def spec(pool_id, nodes=0, vm_size="Standard_A1_v2"):
    return m.PoolAddParameter(
        id=pool_id, vm_size=vm_size, target_dedicated_nodes=nodes,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.ImageReference(publisher="Canonical", offer="0001-com-ubuntu-server-jammy",
                                             sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04"))


def pool_of(width, count, fn):
    # list() drains the results so that an exception in a worker is raised here
    with ThreadPoolExecutor(max_workers=width) as ex:
        list(ex.map(fn, range(count)))


if scenario == "show":
    client.pool.get(args[0])
elif scenario == "crud":
    for i in range(1, int(args[0]) + 1):
        pool_id = "crud-%04d" % i
        client.pool.add(spec(pool_id))
        client.pool.get(pool_id)
        client.pool.delete(pool_id)
elif scenario == "list":
    # the pager follows odata.nextLink as it is iterated
    pools = list(client.pool.list(m.PoolListOptions(max_results=int(args[1]))))
    assert len(pools) == int(args[0]), len(pools)
elif scenario == "gets":
    pool_of(int(args[1]), int(args[0]), lambda _: client.pool.get(args[2]))
elif scenario == "audit":
    pools = list(client.pool.list())
    assert len(pools) == int(args[0]), len(pools)

    def nodes_of(i):
        nodes = list(client.compute_node.list(pools[i].id))
        assert len(nodes) == int(args[1]), len(nodes)
    pool_of(int(args[2]), len(pools), nodes_of)
elif scenario == "bluegreen":
    # azbatch.rollout's blue-green, step by step: green at blue's size, wait,
    # health, jobs to hand over (none here), drain blue, delete it, wait
    blue, green, poll = args[0], args[1], float(args[2])
    deadline = time.monotonic() + 600

    def until(done):
        while not done():
            assert time.monotonic() < deadline, "timeout"
            time.sleep(poll)

    def steady(pool_id):
        p = client.pool.get(pool_id, m.PoolGetOptions(select="id,allocationState,resizeErrors"))
        assert not (p.allocation_state == "steady" and p.resize_errors), p.resize_errors
        return p.allocation_state == "steady"

    old = client.pool.get(blue, m.PoolGetOptions(select="id,vmSize,targetDedicatedNodes"))
    client.pool.add(spec(green, old.target_dedicated_nodes, old.vm_size))
    until(lambda: steady(green))
    assert all(n.state in ("idle", "running") for n in client.compute_node.list(green)), "unhealthy node"
    assert not [j for j in client.job.list() if j.pool_info and j.pool_info.pool_id == blue], "jobs to hand over"
    client.pool.resize(blue, m.PoolResizeParameter(target_dedicated_nodes=0, target_low_priority_nodes=0,
                                                   node_deallocation_option="taskcompletion"))
    until(lambda: steady(blue))
    client.pool.delete(blue)
    until(lambda: not client.pool.exists(blue))
else:
    sys.exit("usage: python_sdk.py show|crud|list|gets|audit|bluegreen ARGS...")
