"""azbatch emulator: a loopback-only emulator of the Azure Batch data plane,
plus the ARM and Entra ID pieces a preflight needs.

Modules, one job each:
  wire             request/response value types, error dialects, time formatting
  world            the world file (accounts, quotas, images, galleries) and the simulated clock
  auth             Shared Key signing/verification, bearer tokens, Entra ID and IMDS endpoints
  odata            the $filter subset, $select, maxresults and paging used by list operations
  formula          the autoscale formula evaluator
  validate         request bodies and property values, the service's 4xx builders
  batch_models     the Batch state machine: pools, nodes, allocation clock, resize errors
  batch_responses  the Batch HTTP handlers (request -> model call -> response) and rendering
  batch_urls       the Batch routes (method + path -> handler)
  arm              ARM: gallery images and versions, managed images, Batch accounts
  control          the /_emulator/ control API
  core             the emulator's state, which plane a request is for, and routing to it
  server           HTTP plumbing, fault injection, the command line
"""

__version__ = "1.0.0"
