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

function spec(id, nodes = 0) {
  return {
    id, vmSize: "Standard_A1_v2", targetDedicatedNodes: nodes,
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
    const [blue, green] = args;
    await client.pool.add(spec(green, num(2)));
    const deadline = Date.now() + 600e3;
    for (;;) {
      const p = await client.pool.get(green, { poolGetOptions: { select: "id,allocationState,resizeErrors" } });
      if (p.allocationState === "steady") { check(!p.resizeErrors, "resize error"); break; }
      check(Date.now() < deadline, "timeout");
      await sleep(num(3) * 1000);
    }
    await client.pool.deleteMethod(blue);
    break;
  }
  default:
    console.error("usage: node.mjs show|crud|list|gets|audit|bluegreen ARGS...");
    process.exit(2);
}
