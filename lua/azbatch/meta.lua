---@meta azbatch
-- LuaLS annotations of the public azbatch table, for editors: every name a
-- script uses, with its return protocol. Never loaded at run time.
-- "fail" is nil, message (one line), err (a table; see azbatch.Err).

---@class azbatch.Err
---@field kind "validation"|"transport"|"timeout"|"auth"|"api"
---@field field? string first offending field path (validation)
---@field errors? {field: string, message: string}[] up to 20 problems (validation)
---@field status? integer HTTP status (api)
---@field code? string the service's error code, or InvalidResponse, ResponseTooLarge
---@field message? string the service's message, cleaned
---@field values? {key: string, value: string}[] the service's details
---@field request_id? string
---@field client_request_id? string
---@field retry_after? number seconds the service asked to wait
---@field attempts? integer
---@field retryable? boolean
---@field sent? boolean whether any request byte left (transport)
---@field cancelled? boolean the request was cancelled (a closed client or transport)
---@field outcome? "unknown" set when the operation may have taken effect
---@field cause? string what made an auth failure (transport, timeout)

---@class azbatch.Response
---@field status integer
---@field headers table<string, string> lower-cased names, cleaned values
---@field request_id? string
---@field client_request_id? string
---@field etag? string
---@field attempts integer

---@class azbatch.Result a mutating call's success
---@field etag? string
---@field request_id? string
---@field attempts? integer
---@field recovered? true an earlier attempt took effect and its answer was lost

---@class azbatch.List: function a paged list: for item in list do ... end (raises on failure)

local azbatch = {}

azbatch._VERSION = "0.1.0"
azbatch.API_VERSION = "2025-06-01"

--- An image reference from a table of REST fields, an az URN or an image resource id.
---@param x table|string
---@return userdata|nil ref, string? message, azbatch.Err? err
function azbatch.image_reference(x) end

--- A validated virtualMachineConfiguration.
---@param t table
---@return userdata|nil vm, string? message, azbatch.Err? err
function azbatch.vm_configuration(t) end

--- A validated pool body; warnings is always an array.
---@param t table
---@return table|nil spec, table|string warnings_or_message, azbatch.Err? err
function azbatch.pool_spec(t) end

--- Validate a body of a kind ("pool", "pool.update", "pool.resize", ...).
---@param kind string
---@param t table
---@return table|nil body, table|string warnings_or_message, azbatch.Err? err
function azbatch.validate(kind, t) end

--- The node agent SKU against an image reference.
---@return true|nil ok, table|string warnings_or_message, azbatch.Err? err
function azbatch.check_node_agent(image, agent) end

--- Gallery replicas and resize timeout for a pool size.
---@param opts {nodes?: integer, targetDedicatedNodes?: integer, targetLowPriorityNodes?: integer, enableAutoScale?: boolean, resizeTimeout?: string, replicas?: integer}
---@return table|nil plan, string? message, azbatch.Err? err
function azbatch.plan(opts) end

--- Seconds of an ISO 8601 duration ("PT15M").
---@return number|nil seconds, string? message, azbatch.Err? err
function azbatch.parse_duration(s) end

--- The canonical duration for whole seconds ("PT30M").
---@param seconds number
---@return string
function azbatch.format_duration(seconds) end

--- A string from the network made safe for one line of a terminal.
---@param s string
---@param max? integer bytes (default 512)
---@return string
function azbatch.sanitize(s, max) end

---@class azbatch.json
---@field null lightuserdata the JSON null
azbatch.json = {}
---@return string|nil text, string? message, azbatch.Err? err
function azbatch.json.encode(value, kind) end
---@return any value, string? message, azbatch.Err? err
function azbatch.json.decode(text) end
--- Mark t to encode as a JSON array even when empty.
---@return table t
function azbatch.json.array(t) end

---@class azbatch.ClientOptions
---@field endpoint? string https://{account}.{region}.batch.azure.com (default AZURE_BATCH_ENDPOINT)
---@field credential? userdata|table a SharedKey, a TokenCredential or a chain (default: from the environment)
---@field account? string
---@field timeout? number seconds per request (60)
---@field connect_timeout? number seconds (10)
---@field ca_file? string
---@field ca_path? string
---@field retry? table|false {max_attempts=5, max_elapsed=60, base_delay=0.5, max_delay=30}
---@field http? userdata a transport of its own (default: the shared one)
---@field max_connections? integer gives the client a transport of its own
---@field max_response? integer bytes (32 MiB)
---@field verbose? boolean connection events on stderr (never secrets)
---@field scope? string
---@field user_agent? string
---@field api_version? string

--- A client for one Batch account.
---@param opts azbatch.ClientOptions
---@return azbatch.Client|nil client, string? message, azbatch.Err? err
function azbatch.client(opts) end

---@class azbatch.Client
local Client = {}
azbatch.Client = Client   -- the class (made by azbatch.client)
---@return table|nil result, string? message, azbatch.Err? err
function Client:create_pool(spec, opts) end
---@return table|nil pool, azbatch.Response|string resp_or_message, azbatch.Err? err
function Client:get_pool(id, opts) end
---@return azbatch.List
function Client:list_pools(opts) end
---@return boolean|nil exists, string? message, azbatch.Err? err
function Client:pool_exists(id, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:delete_pool(id, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:patch_pool(id, props, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:replace_pool_properties(id, props, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:resize_pool(id, resize, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:stop_resize_pool(id, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:enable_autoscale(id, settings, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:disable_autoscale(id, opts) end
---@return table|nil run, azbatch.Response|string resp_or_message, azbatch.Err? err
function Client:evaluate_autoscale(id, formula, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:remove_nodes(id, removal, opts) end
---@return azbatch.List
function Client:list_nodes(pool_id, opts) end
---@return table|nil node, azbatch.Response|string resp_or_message, azbatch.Err? err
function Client:get_node(pool_id, node_id, opts) end
---@return azbatch.List
function Client:list_supported_images(opts) end
---@return azbatch.List
function Client:list_pool_node_counts(opts) end
---@class azbatch.WaitOptions
---@field timeout? number seconds (1800)
---@field interval? number first poll interval, seconds (2)
---@field max_interval? number the backoff's cap, seconds (30)
---@field on_progress? fun(p: {id: string, state: string, allocationState: string, target: integer, current: integer, counts: table<string, integer>, elapsed: number})
---@field nodes? "ready"|"allocated" what "done" means ("ready": every node idle or running)
---@field max_unusable? integer nodes tolerated in unusable (0)
---@field max_start_task_failed? integer nodes tolerated in starttaskfailed (0)
---@field since? string the pool's allocationStateTransitionTime before the caller's resize

--- Until the pool is steady with its targets reached (and its nodes ready), or a fail that waiting
--- cannot mend: this resize's error, NodesUnusable, StartTaskFailed, PoolBeingDeleted, timeout.
---@param opts? azbatch.WaitOptions
---@return table|nil pool, string? message, azbatch.Err? err
function Client:wait_pool(id, opts) end
---@param opts? {timeout?: number, interval?: number, max_interval?: number, on_progress?: function}
---@return true|nil gone, string? message, azbatch.Err? err
function Client:wait_pool_deleted(id, opts) end

---@class azbatch.Finding
---@field code string e.g. "IMAGE_NO_REPLICA_IN_REGION"
---@field severity "error"|"warning"|"info"
---@field message string
---@field fix? string
---@field field? string the body's field path

--- Reads the facts a pool body depends on (ARM and the data plane) and judges them; sends no write.
---@param spec table a pool body
---@param opts? {arm?: azbatch.Arm, account?: string, subscription?: string, cache?: table, usage?: boolean}
---@return {ok: boolean, findings: azbatch.Finding[], facts: table, derived: table}|nil report, string? message, azbatch.Err? err
function Client:preflight(spec, opts) end
---@return string|nil sku, string reason_or_message, azbatch.Err? err
function Client:choose_node_agent(image, opts) end
---@param opts {blob: string, name: string, os_type: "Linux"|"Windows", resource_group?: string, hyperv_generation?: "V1"|"V2", timeout?: number, on_progress?: function}
---@return table|nil image the managed image resource, string? message, azbatch.Err? err
function Client:image_from_vhd(opts) end
---@param opts {source: string, gallery: string, definition: string, version: string, nodes?: integer, replicas?: integer, regions?: string[], node_agent?: string, marketplace?: string, exclude_from_latest?: boolean, end_of_life?: string}
---@return table|nil version the gallery image version resource, string? message, azbatch.Err? err
function Client:publish_image(opts) end
---@param opts {image: string, nodes?: integer, replicas?: integer, region?: string, timeout?: number, interval?: number, on_progress?: function}
---@return table|nil version, string? message, azbatch.Err? err
function Client:replicate_image(opts) end

---@class azbatch.PoolImage
---@field id string
---@field kind string "marketplace", "gallery_version", "gallery_latest", "managed", ...
---@field custom boolean
---@field operating_system string the portal's "Operating system" line
---@field node_agent string
---@field versions {version: string, nodes: integer}[]
---@field findings azbatch.Finding[]

---@param opts? {arm?: azbatch.Arm, nodes?: boolean}
---@return azbatch.PoolImage|nil report, string? message, azbatch.Err? err
function Client:pool_image(id, opts) end
---@param opts? {arm?: azbatch.Arm, filter?: string, nodes?: boolean, concurrency?: integer}
---@return azbatch.PoolImage[]|nil reports, string? message, azbatch.Err? err
function Client:pool_images(opts) end

---@class azbatch.Arm
local Arm = {}
azbatch.Arm = Arm   -- the class (made by azbatch.arm)
---@return table|nil resource, azbatch.Response|string resp_or_message, azbatch.Err? err
function Arm:get(id, api_version, opts) end
---@return azbatch.List
function Arm:list(path, api_version, query) end
---@return table|nil resource, string? message, azbatch.Err? err
function Arm:put(id, api_version, body, opts) end
---@return table|nil resource, string? message, azbatch.Err? err
function Arm:patch(id, api_version, body, opts) end
--- An ARM client on the same transport (default endpoint AZURE_RESOURCE_MANAGER_ENDPOINT or management.azure.com).
---@param opts? {endpoint?: string, credential?: userdata|table}
---@return azbatch.Arm|nil arm, string? message, azbatch.Err? err
function azbatch.arm(opts) end
---@return any value, azbatch.Response|string resp_or_message, azbatch.Err? err
function Client:request(method, path, opts) end
---@return azbatch.List
function Client:pages(path, query) end
function Client:close() end

--- Every item of a list, or fail.
---@param list azbatch.List
---@return table[]|nil items, string? message, azbatch.Err? err
function azbatch.collect(list) end

--- Run functions as coroutines that yield while their requests are in flight.
---@param fns function[]
---@return table[] results one table.pack per function
function azbatch.parallel(fns) end

--- Sleep: yields inside azbatch.parallel, blocks outside.
---@param seconds number
function azbatch.sleep(seconds) end

--- Seconds on a monotonic clock.
---@return number
function azbatch.now() end

--- A transport (curl multi handle) to share between clients.
---@param opts? {timeout?: number, connect_timeout?: number, ca_file?: string, ca_path?: string, user_agent?: string, max_connections?: integer, max_response?: integer, verbose?: boolean}
---@return userdata http
function azbatch.http(opts) end

---@class azbatch.credential
azbatch.credential = {}
azbatch.credential.BATCH_SCOPE = "https://batch.core.windows.net//.default"
azbatch.credential.ARM_SCOPE = "https://management.azure.com/.default"
---@return userdata|nil key, string? message, azbatch.Err? err
function azbatch.credential.shared_key(account, key_base64) end
---@param opts {tenant: string, client_id: string, client_secret: string, authority?: string}
function azbatch.credential.client_secret(opts) end
---@param opts {tenant: string, client_id: string, token_file: string, authority?: string}
function azbatch.credential.workload(opts) end
---@param opts? {client_id?: string, endpoint?: string}
function azbatch.credential.managed_identity(opts) end
---@param opts? {command?: string, tenant?: string}
function azbatch.credential.azure_cli(opts) end
---@param opts? {env?: table, managed_identity?: boolean, managed_identity_endpoint?: string, azure_cli?: boolean, azure_cli_command?: string}
function azbatch.credential.default(opts) end
function azbatch.credential.from_env(opts) end
function azbatch.credential.chain(sources) end
--- A token itself, for callers that need it: token, expires_on or fail.
---@return string|nil token, integer|string expires_or_message, azbatch.Err? err
function azbatch.credential.token(cred, scope, opts) end
---@return boolean
function azbatch.credential.is_shared_key(cred) end

-- Jobs (azbatch.jobs): what a handover is made of.
---@return azbatch.List
function Client:list_jobs(opts) end
---@param opts? {select?: string, timeout?: number}
---@return table|nil job, azbatch.Response|string resp_or_message, azbatch.Err? err
function Client:get_job(id, opts) end
--- JobUpdateOptions fields: poolInfo, metadata, priority, constraints, ...
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:patch_job(id, properties, opts) end
---@param disable_tasks "requeue"|"terminate"|"wait"
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:disable_job(id, disable_tasks, opts) end
---@return azbatch.Result|nil result, string? message, azbatch.Err? err
function Client:enable_job(id, opts) end
--- Move every job of pool 'from' to pool 'to' and wait until they run there.
---@param opts? {tag?: string, disable_tasks?: "requeue"|"terminate"|"wait", timeout?: number, interval?: number}
---@return {jobs: string[], moved: integer, disabled: integer}|nil result, string? message, azbatch.Err? err
function Client:hand_over_jobs(from, to, opts) end

-- Rollouts: require "azbatch.rollout" (docs/rollouts.md).

---@class azbatch.RolloutStep
---@field n integer 1-based; undo steps are negative
---@field name string
---@field call "preflight"|"create_pool"|"resize_pool"|"patch_pool"|"delete_pool"|"disable_autoscale"|"enable_autoscale"|"wait_pool"|"wait_empty"|"wait_deleted"|"handover"|"health"|"approve"|"finish"
---@field pool? string
---@field pools? string[]
---@field method? string
---@field path? string
---@field body? table
---@field undo? azbatch.RolloutStep[]
---@field commit? true cannot be undone (deleting an old pool)

---@class azbatch.RolloutReport
---@field id string
---@field strategy string
---@field state "done"|"rolled_back"|"aborted"|"failed"|"running"|"rolling_back"|"busy"
---@field rolled_back boolean
---@field started number epoch seconds
---@field ended number
---@field steps {n: integer, name: string, call: string, pool?: string, start: number, ["end"]: number, outcome: "ok"|"skipped"|"failed"|"unknown", message?: string, recovered?: true}[]
---@field undo table[] the rollback's steps, the same shape
---@field pools string[]
---@field samples {t: number, pool: string, counts: table<string, integer>}[]
---@field findings table[] preflight findings
---@field text string one line per step

---@class azbatch.Rollout
local Rollout = {} -- luacheck: ignore (made by rollout.new)
---@return azbatch.RolloutStep[]|nil steps, string? message, azbatch.Err? err
function Rollout:plan() end
---@param out? file*|fun(line: string)
---@return azbatch.RolloutStep[]|nil steps, string? message, azbatch.Err? err
function Rollout:dry_run(out) end
--- On failure err.report holds the report (err.rolled_back, err.committed).
---@return azbatch.RolloutReport|nil report, string? message, azbatch.Err? err
function Rollout:run() end
---@return azbatch.RolloutReport
function Rollout:report() end
---@return string svg
function Rollout:timeline_svg() end

---@class azbatch.rollout
local rollout = {} -- luacheck: ignore (the table require "azbatch.rollout" returns)
---@param client table azbatch.Client
---@param opts {strategy: "canary"|"blue-green"|"rolling"|"in-place", pools: string[], image: string|table, node_agent?: string, spec?: table, canary?: {nodes?: integer, then?: "blue-green"|"rolling"|"in-place", keep?: boolean}, batch?: integer, extra_nodes?: integer, keep_old?: boolean, deallocation?: "requeue"|"terminate"|"taskcompletion"|"retaineddata", handover?: "jobs"|false|fun(ctx: table, from: string, to: string): (boolean?, string?), disable_tasks?: "requeue"|"terminate"|"wait", timeouts?: {step?: number, wait?: number, poll?: number}, hooks?: {health?: fun(ctx: table, pool: string): (boolean?, string?), approve?: fun(ctx: table, step: azbatch.RolloutStep): boolean, on_step?: fun(entry: table), notify?: fun(event: table)}, id?: string, preflight?: boolean, arm?: table, account?: string, names?: table|fun(old: string, id: string): string}
---@return azbatch.Rollout|nil r, string? message, azbatch.Err? err
function rollout.new(client, opts) end
---@return {rollouts: table[]}|nil status, string? message, azbatch.Err? err
function rollout.status(client) end
---@param opts? {hooks?: table, handover?: function, timeouts?: table, arm?: table, account?: string}
---@return azbatch.RolloutReport|nil report, string? message, azbatch.Err? err
function rollout.resume(client, id, opts) end
---@param opts? {hooks?: table, handover?: function, timeouts?: table, arm?: table, account?: string}
---@return azbatch.RolloutReport|nil report, string? message, azbatch.Err? err
function rollout.abort(client, id, opts) end
---@return true|nil ok, string? message, azbatch.Err? err
function rollout.forget(client, id) end
---@param report azbatch.RolloutReport
---@return string svg
function rollout.svg(report) end
---@param report azbatch.RolloutReport
---@return string text
function rollout.text(report) end

return azbatch
