"""azbatch emulator: a loopback-only emulator of the Azure Batch data plane,
plus the ARM and Entra ID pieces a preflight needs.

Modules, one job each:
  wire             request/response value types, error dialects, time formatting
  world            the world file (accounts, quotas, images, galleries, ...) and the simulated clock
  failures         node failure rules (nodes that end unusable or starttaskfailed) and their seeded draws
  auth             Shared Key signing/verification, bearer tokens, Entra ID and IMDS endpoints
  odata            the $filter subset, $select, maxresults and paging used by list operations
  formula          the autoscale formula evaluator
  validate         request bodies and property values, the service's 4xx builders
  images           the data plane's custom-image rules: at create, and at allocation
  batch_models     the Batch state machine: pools, nodes, allocation clock, resize errors
  batch_responses  the Batch pool and node handlers (request -> model call -> response) and rendering
  job_models       the Batch job state machine and the simulated tasks' placement on nodes
  job_responses    the Batch job handlers
  batch_urls       the Batch routes (method + path -> handler)
  arm_models       ARM's state: galleries, definitions, versions and their replication, images, operations
  arm_responses    ARM's handlers (reads, and writes as long-running operations)
  arm_urls         ARM's routes and the checks every ARM request goes through
  control          the /_emulator/ control API
  core             the emulator's state, which plane a request is for, and routing to it
  server           HTTP plumbing, fault injection, the command line
"""

__version__ = "1.0.0"
