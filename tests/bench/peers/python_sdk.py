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


def spec(pool_id, nodes=0):
    return m.PoolAddParameter(
        id=pool_id, vm_size="Standard_A1_v2", target_dedicated_nodes=nodes,
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
    blue, green, nodes, interval = args[0], args[1], int(args[2]), float(args[3])
    client.pool.add(spec(green, nodes))
    deadline = time.monotonic() + 600
    while True:
        p = client.pool.get(green, m.PoolGetOptions(select="id,allocationState,resizeErrors"))
        if p.allocation_state == "steady":
            assert not p.resize_errors, p.resize_errors
            break
        assert time.monotonic() < deadline, "timeout"
        time.sleep(interval)
    client.pool.delete(blue)
else:
    sys.exit("usage: python_sdk.py show|crud|list|gets|audit|bluegreen ARGS...")
