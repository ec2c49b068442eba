// make bench-peers: the scenarios with npm's @azure/batch (10.x), one process
// per scenario. Endpoint and Shared Key from the environment, as for azbatch.
//   node node.mjs SCENARIO ARGS...   (the arguments of azbatch.lua)
// PEERS_NODE_PREFIX is the npm prefix holding node_modules/@azure/batch.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(path.resolve(process.env.PEERS_NODE_PREFIX), "package.json"));
const { BatchServiceClient, BatchSharedKeyCredentials } = require("@azure/batch");

const env = process.env;
const client = new BatchServiceClient(
  new BatchSharedKeyCredentials(env.AZURE_BATCH_ACCOUNT, env.AZURE_BATCH_ACCESS_KEY), env.AZURE_BATCH_ENDPOINT);
const [scenario, ...args] = process.argv.slice(2);
const num = (i) => Number(args[i]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function spec(id, nodes = 0, vmSize = "Standard_A1_v2") {
  return {
    id, vmSize, targetDedicatedNodes: nodes,
    virtualMachineConfiguration: {
      imageReference: {
        publisher: "Canonical", offer: "0001-com-ubuntu-server-jammy", sku: "22_04-lts", version: "latest",
      },
      nodeAgentSKUId: "batch.node.ubuntu 22.04",
    },
  };
}

// The SDK returns one page at a time; follow odatanextLink.
async function all(first, next) {
  const items = [];
  for (let page = await first(); ; page = await next(page.odatanextLink)) {
    items.push(...page);
    if (!page.odatanextLink) return items;
  }
}

// A Promise pool: 'width' workers take the next index until none is left.
async function poolOf(width, count, fn) {
  let next = 0;
  const worker = async () => { while (next < count) await fn(next++); };
  await Promise.all(Array.from({ length: width }, worker));
}

function check(cond, what) { if (!cond) throw new Error(what); }

switch (scenario) {
  case "show":
    await client.pool.get(args[0]);
    break;
  case "crud":
    for (let i = 1; i <= num(0); i++) {
      const id = `crud-${String(i).padStart(4, "0")}`;
      await client.pool.add(spec(id));
      await client.pool.get(id);
      await client.pool.deleteMethod(id);
    }
    break;
  case "list": {
    const pools = await all(() => client.pool.list({ poolListOptions: { maxResults: num(1) } }),
      (link) => client.pool.listNext(link));
    check(pools.length === num(0), `${pools.length} pools`);
    break;
  }
  case "gets":
    await poolOf(num(1), num(0), () => client.pool.get(args[2]));
    break;
  case "audit": {
    const pools = await all(() => client.pool.list(), (link) => client.pool.listNext(link));
    check(pools.length === num(0), `${pools.length} pools`);
    await poolOf(num(2), pools.length, async (i) => {
      const nodes = await all(() => client.computeNode.list(pools[i].id), (link) => client.computeNode.listNext(link));
      check(nodes.length === num(1), `${nodes.length} nodes`);
    });
    break;
  }
  case "bluegreen": {
    // azbatch.rollout's blue-green, step by step: green at blue's size, wait,
    // health, jobs to hand over (none here), drain blue, delete it, wait
    const [blue, green] = args;
    const poll = num(2) * 1000;
    const deadline = Date.now() + 600e3;
    const until = async (done) => {
      while (!(await done())) { check(Date.now() < deadline, "timeout"); await sleep(poll); }
    };
    const steady = (id) => until(async () => {
      const p = await client.pool.get(id, { poolGetOptions: { select: "id,allocationState,resizeErrors" } });
      check(!(p.allocationState === "steady" && p.resizeErrors), `${id}: resize error`);
      return p.allocationState === "steady";
    });
    const old = await client.pool.get(blue, { poolGetOptions: { select: "id,vmSize,targetDedicatedNodes" } });
    await client.pool.add(spec(green, old.targetDedicatedNodes, old.vmSize));
    await steady(green);
    const nodes = await all(() => client.computeNode.list(green), (link) => client.computeNode.listNext(link));
    check(nodes.every((n) => n.state === "idle" || n.state === "running"), "unhealthy node");
    const jobs = await all(() => client.job.list(), (link) => client.job.listNext(link));
    check(!jobs.some((j) => j.poolInfo && j.poolInfo.poolId === blue), "jobs to hand over");
    await client.pool.resize(blue, { targetDedicatedNodes: 0, targetLowPriorityNodes: 0,
      nodeDeallocationOption: "taskcompletion" });
    await steady(blue);
    await client.pool.deleteMethod(blue);
    await until(async () => (await client.pool.exists(blue)).body === false);
    break;
  }
  default:
    console.error("usage: node.mjs show|crud|list|gets|audit|bluegreen ARGS...");
    process.exit(2);
}
