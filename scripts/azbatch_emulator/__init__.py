"""azbatch emulator: a loopback-only emulator of the Azure Batch data plane,
plus the ARM and Entra ID pieces a preflight needs.

Modules, one job each:
  wire     request/response value types, error dialects, time formatting
  world    the world (accounts, quotas, images, galleries) and the simulated clock
  auth     Shared Key signing/verification, bearer tokens, Entra ID and IMDS endpoints
  odata    the $filter subset and $select helpers used by list operations
  formula  the autoscale formula evaluator
  pools    pools and nodes: validation, allocation state machine, data-plane handlers
  arm      ARM: gallery images and versions, managed images, Batch accounts
  server   HTTP server, routing, fault injection, control API, command line
"""

__version__ = "1.0.0"
