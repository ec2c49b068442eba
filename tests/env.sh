# Sourced by every test runner. Every endpoint a default credential chain or
# client could reach is pinned to a closed loopback port: a test that forgets
# to name its own fails there, and never sends a byte off this machine.
export AZURE_RESOURCE_MANAGER_ENDPOINT=http://127.0.0.1:9
export AZURE_AUTHORITY_HOST=http://127.0.0.1:9
export AZBATCH_IMDS_ENDPOINT=http://127.0.0.1:9/metadata/identity/oauth2/token
unset AZURE_BATCH_ENDPOINT AZURE_BATCH_ACCOUNT AZURE_BATCH_ACCESS_KEY AZURE_TENANT_ID AZURE_CLIENT_ID \
  AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE AZURE_SUBSCRIPTION_ID AZURE_BATCH_ACCOUNT_RESOURCE_ID
