// Interop checks of the npm `@azure/batch` SDK against the azbatch emulator.
//
// Usage: node tests/interop/sdk_check.mjs
// Environment:
//   INTEROP_PREFIX  the npm prefix that holds node_modules/@azure/batch (build/interop)
//   BATCH_ENDPOINT  http://127.0.0.1:PORT
//   BATCH_ACCOUNT, BATCH_KEY  the Shared Key credentials
//
// Prints one line per check, `ok - NAME` or `not ok - NAME # REASON`, with no
// number: tests/interop/run.sh numbers them.  Exits 1 when a check failed.

import { createRequire } from "node:module";
import path from "node:path";

const prefix = path.resolve(process.env.INTEROP_PREFIX || "build/interop");
const require = createRequire(path.join(prefix, "package.json"));
const batch = require("@azure/batch");
const { BatchServiceClient, BatchSharedKeyCredentials } = batch;

const endpoint = process.env.BATCH_ENDPOINT;
const account = process.env.BATCH_ACCOUNT || "devbatch";
const key = process.env.BATCH_KEY;
if (!endpoint || !key) {
  console.error("sdk_check: BATCH_ENDPOINT and BATCH_KEY must be set");
  process.exit(2);
}

const client = new BatchServiceClient(new BatchSharedKeyCredentials(account, key), endpoint);
const sdkVersion = require("@azure/batch/package.json").version;
const run = Date.now().toString(36);
const poolId = `sdk-${run}`;
const pagePools = [1, 2, 3].map((i) => `sdk-${run}-page${i}`);
let failed = 0;

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function describe(err) {
  if (err && err.statusCode !== undefined) {
    // ms-rest-js copies Batch's {lang, value} message object into err.message.
    const msg = err.body && err.body.message && err.body.message.value ? err.body.message.value : err.message;
    return `HTTP ${err.statusCode} ${err.code || ""}: ${String(msg).split("\n")[0]}`;
  }
  return String(err && err.message ? err.message : err).split("\n")[0];
}

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - sdk: ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - sdk: ${name} # ${describe(err)}`);
  }
}

async function expectError(fn, status, code) {
  try {
    await fn();
  } catch (err) {
    assert(err.statusCode === status, `expected HTTP ${status}, got ${err.statusCode} (${describe(err)})`);
    assert(err.code === code, `expected code ${code}, got ${err.code}`);
    return err;
  }
  throw new Error(`expected HTTP ${status} ${code}, the call succeeded`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The emulator's control API (no auth): move or change its simulated clock.
async function clock(body) {
  const r = await fetch(`${endpoint}/_emulator/clock`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`clock: HTTP ${r.status}`);
}

async function waitSteady(id) {
  for (let i = 0; i < 200; i++) {
    const p = await client.pool.get(id, { poolGetOptions: { select: "id,allocationState" } });
    if (p.allocationState === "steady") return;
    await sleep(100);
  }
  throw new Error(`pool ${id} did not reach steady`);
}

async function listAll(first, next) {
  const items = [];
  let pages = 0;
  let page = await first();
  for (;;) {
    pages++;
    items.push(...page);
    if (!page.odatanextLink) break;
    page = await next(page.odatanextLink);
  }
  return { items, pages };
}

function marketplacePool(id, nodes) {
  return {
    id,
    vmSize: "Standard_A1_v2",
    targetDedicatedNodes: nodes,
    virtualMachineConfiguration: {
      imageReference: {
        publisher: "canonical",
        offer: "0001-com-ubuntu-server-jammy",
        sku: "22_04-lts",
        version: "latest",
      },
      nodeAgentSKUId: "batch.node.ubuntu 22.04",
    },
  };
}

console.error(`sdk_check: @azure/batch ${sdkVersion}, api-version ${client.apiVersion}, ${endpoint}`);

let etag;

await check("createPool (pool.add) from a marketplace image", async () => {
  const pool = marketplacePool(poolId, 1);
  pool.displayName = "interop SDK pool";
  pool.metadata = [{ name: "owner", value: "interop" }];
  pool.taskSchedulingPolicy = { nodeFillType: "pack" };
  pool.targetNodeCommunicationMode = "default";
  pool.startTask = { commandLine: "/bin/true", waitForSuccess: true,
    userIdentity: { autoUser: { scope: "pool", elevationLevel: "admin" } } };
  const res = await client.pool.add(pool);
  assert(res._response.status === 201, `status ${res._response.status}`);
  assert(res.eTag, "no ETag header");
  assert(res.lastModified instanceof Date && !isNaN(res.lastModified), "bad Last-Modified");
  assert(res.dataServiceId && res.dataServiceId.endsWith(`/pools/${poolId}`), `dataServiceId ${res.dataServiceId}`);
  assert(res.requestId, "no request-id");
});

await check("createPool with an existing id gives 409 PoolExists", async () => {
  await expectError(() => client.pool.add(marketplacePool(poolId, 1)), 409, "PoolExists");
});

await check("getPool returns the pool with its 2022-10-01 fields", async () => {
  const p = await client.pool.get(poolId);
  assert(p.id === poolId, `id ${p.id}`);
  assert(p.vmSize.toLowerCase() === "standard_a1_v2", `vmSize ${p.vmSize}`);
  assert(p.state === "active", `state ${p.state}`);
  assert(["resizing", "steady"].includes(p.allocationState), `allocationState ${p.allocationState}`);
  assert(p.creationTime instanceof Date && !isNaN(p.creationTime), "creationTime not a date");
  assert(p.virtualMachineConfiguration.nodeAgentSKUId === "batch.node.ubuntu 22.04", "nodeAgentSKUId");
  assert(p.virtualMachineConfiguration.imageReference.offer === "0001-com-ubuntu-server-jammy", "imageReference");
  assert(p.targetDedicatedNodes === 1, `targetDedicatedNodes ${p.targetDedicatedNodes}`);
  assert(p.displayName === "interop SDK pool", "displayName");
  assert(p.metadata && p.metadata[0].value === "interop", "metadata");
  assert(p.taskSchedulingPolicy.nodeFillType === "pack", "taskSchedulingPolicy");
  assert(p.targetNodeCommunicationMode === "default", `targetNodeCommunicationMode ${p.targetNodeCommunicationMode}`);
  assert(p.startTask && p.startTask.commandLine === "/bin/true", "startTask");
  assert(p.eTag && p.eTag === p._response.headers.get("etag"), "eTag property vs header");
  assert(p.url === `${endpoint}/pools/${poolId}`, `url ${p.url}`);
  etag = p.eTag;
});

await check("getPool with $select returns only the selected properties", async () => {
  const p = await client.pool.get(poolId, { poolGetOptions: { select: "id,state" } });
  assert(p.id === poolId && p.state === "active", "id/state");
  assert(p.vmSize === undefined, "vmSize was returned");
});

await check("poolExists (HEAD) is true for the pool", async () => {
  const r = await client.pool.exists(poolId);
  assert(r.body === true, `body ${r.body}`);
});

await check("poolExists (HEAD) is false for a missing pool", async () => {
  const r = await client.pool.exists(`${poolId}-missing`);
  assert(r.body === false, `body ${r.body}`);
});

await check("getPool of a missing pool gives 404 PoolNotFound", async () => {
  const err = await expectError(() => client.pool.get(`${poolId}-missing`), 404, "PoolNotFound");
  assert(err.body && err.body.message && /does not exist/.test(err.body.message.value), "message.value");
  assert(err.request && err.request.url.includes(`${poolId}-missing`), "request url");
});

await check("listPools pages with maxResults and odata.nextLink", async () => {
  for (const id of pagePools) await client.pool.add(marketplacePool(id, 0));
  const { items, pages } = await listAll(
    () => client.pool.list({ poolListOptions: { maxResults: 2, filter: `startswith(id,'sdk-${run}')` } }),
    (link) => client.pool.listNext(link));
  const ids = items.map((p) => p.id).sort();
  const want = [poolId, ...pagePools].sort();
  assert(JSON.stringify(ids) === JSON.stringify(want), `ids ${ids}`);
  assert(pages === 2, `pages ${pages}`);
});

await check("listPools with $filter and $select", async () => {
  const list = await client.pool.list({ poolListOptions: { filter: `id eq '${poolId}'`, select: "id,vmSize" } });
  assert(list.length === 1 && list[0].id === poolId, `got ${list.map((p) => p.id)}`);
  assert(list[0].state === undefined, "state was returned");
});

await check("patchPool with a stale If-Match gives 412 ConditionNotMet", async () => {
  await expectError(() => client.pool.patch(poolId, { metadata: [{ name: "k", value: "v" }] },
    { poolPatchOptions: { ifMatch: "0x8D0000000000000" } }), 412, "ConditionNotMet");
});

await check("patchPool with the current If-Match succeeds and changes the ETag", async () => {
  const r = await client.pool.patch(poolId, { metadata: [{ name: "k", value: "v" }] },
    { poolPatchOptions: { ifMatch: etag } });
  assert(r._response.status === 200, `status ${r._response.status}`);
  assert(r.eTag && r.eTag !== etag, "ETag did not change");
  const p = await client.pool.get(poolId);
  assert(p.metadata.length === 1 && p.metadata[0].name === "k", "metadata not merged");
});

await check("resizePool while resizing gives 409 PoolBeingResized, then succeeds when steady", async () => {
  const p = await client.pool.get(poolId);
  if (p.allocationState === "resizing") {
    await expectError(() => client.pool.resize(poolId, { targetDedicatedNodes: 2 }), 409, "PoolBeingResized");
  }
  await waitSteady(poolId);
  const r = await client.pool.resize(poolId, { targetDedicatedNodes: 2, resizeTimeout: "PT10M" });
  assert(r._response.status === 202, `status ${r._response.status}`);
  const q = await client.pool.get(poolId);
  assert(q.targetDedicatedNodes === 2, `targetDedicatedNodes ${q.targetDedicatedNodes}`);
  assert(q.resizeTimeout === "PT10M", `resizeTimeout ${q.resizeTimeout}`);
});

await check("listNodes (computeNode.list) returns the pool's nodes", async () => {
  await waitSteady(poolId);
  const { items } = await listAll(() => client.computeNode.list(poolId, { computeNodeListOptions: { maxResults: 1 } }),
    (link) => client.computeNode.listNext(link));
  assert(items.length === 2, `nodes ${items.length}`);
  for (const n of items) {
    assert(/^tvmps_[0-9a-f]{64}_d$/.test(n.id), `node id ${n.id}`);
    assert(n.state === "idle", `state ${n.state}`);
    assert(n.isDedicated === true, "isDedicated");
    assert(n.vmSize.toLowerCase() === "standard_a1_v2", `vmSize ${n.vmSize}`);
  }
  const one = await client.computeNode.get(poolId, items[0].id);
  assert(one.id === items[0].id, "computeNode.get");
});

await check("listSupportedImages returns the verified images, with paging", async () => {
  const { items, pages } = await listAll(
    () => client.account.listSupportedImages({ accountListSupportedImagesOptions: { maxResults: 2 } }),
    (link) => client.account.listSupportedImagesNext(link));
  assert(pages >= 2, `pages ${pages}`);
  const u = items.find((i) => i.nodeAgentSKUId === "batch.node.ubuntu 22.04");
  assert(u, "no batch.node.ubuntu 22.04");
  assert(u.osType === "linux" && u.verificationType === "verified", "osType/verificationType");
  assert(u.imageReference.offer === "0001-com-ubuntu-server-jammy", "imageReference");
  const eol = items.find((i) => i.batchSupportEndOfLife);
  assert(!eol || eol.batchSupportEndOfLife instanceof Date, "batchSupportEndOfLife not a date");
  const verified = await client.account.listSupportedImages(
    { accountListSupportedImagesOptions: { filter: "verificationType eq 'verified'" } });
  assert(verified.length > 0 && verified.every((i) => i.verificationType === "verified"), "$filter");
});

await check("listPoolNodeCounts counts the pool's nodes", async () => {
  const list = await client.account.listPoolNodeCounts(
    { accountListPoolNodeCountsOptions: { filter: `poolId eq '${poolId}'` } });
  assert(list.length === 1 && list[0].poolId === poolId, `entries ${list.length}`);
  assert(list[0].dedicated.total === 2 && list[0].dedicated.idle === 2, `dedicated ${JSON.stringify(list[0].dedicated)}`);
  assert(list[0].lowPriority.total === 0, "lowPriority");
});

await check("listUsageMetrics reports core hours per hour, with startTime and $filter", async () => {
  await clock({ advance: 7200 });              // two hours on: the pool's nodes filled the last whole hour
  const opts = (o) => ({ poolListUsageMetricsOptions: { filter: `poolId eq '${poolId}'`, ...o } });
  const last = await client.pool.listUsageMetrics(opts({}));
  assert(last.length === 1 && last[0].poolId === poolId, `entries ${last.length}`);
  const m = last[0];
  assert(m.startTime instanceof Date && m.endTime instanceof Date, "startTime/endTime not dates");
  assert(m.endTime - m.startTime === 3600000, `interval ${m.startTime.toISOString()}..${m.endTime.toISOString()}`);
  assert(m.vmSize.toLowerCase() === "standard_a1_v2", `vmSize ${m.vmSize}`);
  assert(m.totalCoreHours === 2, `totalCoreHours ${m.totalCoreHours}`);   // 2 nodes x 1 core x 1 h
  const since = await client.pool.listUsageMetrics(opts({ startTime: new Date(m.startTime - 3600000) }));
  assert(since.length >= 2, `entries since ${since.length}`);
  assert(since[since.length - 1].totalCoreHours === 2, "the last hour again");
  assert(since[0].totalCoreHours > 0 && since[0].totalCoreHours <= 2, `first hour ${since[0].totalCoreHours}`);
});

await check("listPools with a $filter holding reserved characters (+ & = % ' é)", async () => {
  const list = await client.pool.list({ poolListOptions: { filter: "id eq 'a+b&c=d%20''é'" } });
  assert(list.length === 0, `got ${list.length}`);
  const empty = await client.pool.list({ poolListOptions: { filter: "", select: "" } });
  assert(empty.some((p) => p.id === poolId && p.vmSize), "an empty $filter / $select");
});

await check("client-request-id is echoed with return-client-request-id and ocp-date is honoured", async () => {
  const id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  const p = await client.pool.get(poolId, { poolGetOptions: { clientRequestId: id, returnClientRequestId: true,
    ocpDate: new Date() } });
  assert(p.clientRequestId === id, `client-request-id ${p.clientRequestId}`);
});

await check("getPool with If-None-Match of the current ETag answers 304", async () => {
  const p = await client.pool.get(poolId);
  try {
    await client.pool.get(poolId, { poolGetOptions: { ifNoneMatch: p.eTag } });
    throw new Error("the call succeeded");
  } catch (err) {
    assert(err.statusCode === 304, describe(err));
  }
  const q = await client.pool.get(poolId, { poolGetOptions: { ifModifiedSince: new Date(Date.now() - 3600e3) } });
  assert(q.id === poolId, "If-Modified-Since in the past");
});

await check("enableAutoScale / evaluateAutoScale / disableAutoScale", async () => {
  await waitSteady(poolId);
  const e = await client.pool.enableAutoScale(poolId,
    { autoScaleFormula: "$TargetDedicatedNodes=2;", autoScaleEvaluationInterval: "PT5M" });
  assert(e._response.status === 200, `enable status ${e._response.status}`);
  const run = await client.pool.evaluateAutoScale(poolId, "$TargetDedicatedNodes=3;");
  assert(run.results.includes("$TargetDedicatedNodes=3") && run.timestamp instanceof Date, `results ${run.results}`);
  const p = await client.pool.get(poolId);
  assert(p.enableAutoScale === true && p.autoScaleEvaluationInterval === "PT5M", "enableAutoScale");
  assert(p.autoScaleRun && p.autoScaleRun.results.includes("$TargetDedicatedNodes=2"), "autoScaleRun");
  await client.pool.disableAutoScale(poolId);
  const q = await client.pool.get(poolId);
  assert(q.enableAutoScale === false && q.targetDedicatedNodes === 2, "disableAutoScale");
});

await check("updateProperties replaces metadata and targetNodeCommunicationMode", async () => {
  const r = await client.pool.updateProperties(poolId, { certificateReferences: [], applicationPackageReferences: [],
    metadata: [{ name: "stage", value: "sdk" }], targetNodeCommunicationMode: "simplified" });
  assert(r._response.status === 204, `status ${r._response.status}`);
  const p = await client.pool.get(poolId);
  assert(p.metadata.length === 1 && p.metadata[0].value === "sdk", "metadata");
  assert(p.targetNodeCommunicationMode === "simplified", `mode ${p.targetNodeCommunicationMode}`);
  assert(p.startTask === undefined, "startTask was not removed");
});

await check("stopResize stops a running resize with resizeError ResizeStopped", async () => {
  await waitSteady(poolId);
  await clock({ timeScale: 1e-9 });
  try {
    await client.pool.resize(poolId, { targetDedicatedNodes: 30 });
    const r = await client.pool.stopResize(poolId);
    assert(r._response.status === 202, `status ${r._response.status}`);
    const p = await client.pool.get(poolId);
    assert(p.allocationState === "stopping", `allocationState ${p.allocationState}`);
  } finally {
    await clock({ advance: 30 });
    await clock({ timeScale: 100 });
  }
  await waitSteady(poolId);
  const q = await client.pool.get(poolId);
  assert(q.resizeErrors && q.resizeErrors[0].code === "ResizeStopped", `resizeErrors ${JSON.stringify(q.resizeErrors)}`);
});

await check("removeNodes removes a node", async () => {
  await waitSteady(poolId);
  const before = await client.computeNode.list(poolId);
  const r = await client.pool.removeNodes(poolId, { nodeList: [before[0].id], nodeDeallocationOption: "requeue" });
  assert(r._response.status === 202, `status ${r._response.status}`);
  await waitSteady(poolId);
  const after = await client.computeNode.list(poolId);
  assert(after.length === before.length - 1 && !after.some((n) => n.id === before[0].id),
    `nodes ${before.length} -> ${after.length}`);
});

await check("deletePool answers 202 and the pool goes deleting", async () => {
  const r = await client.pool.deleteMethod(poolId);
  assert(r._response.status === 202, `status ${r._response.status}`);
  const p = await client.pool.get(poolId);
  assert(p.state === "deleting", `state ${p.state}`);
  await expectError(() => client.pool.resize(poolId, { targetDedicatedNodes: 1 }), 409, "PoolBeingDeleted");
  for (const id of pagePools) await client.pool.deleteMethod(id);
});

await check("the deleted pool disappears (poolExists false)", async () => {
  for (let i = 0; i < 200; i++) {
    const r = await client.pool.exists(poolId);
    if (r.body === false) return;
    await sleep(100);
  }
  throw new Error("pool still exists");
});

process.exit(failed ? 1 : 0);
