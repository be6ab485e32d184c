#!/usr/bin/env bash
# azd postdeploy hook: step 2 of the TimeBridge deployment.
#
# Creates/updates the Event Grid subscription that sends BlobCreated events of the input container
# to the import_file blob trigger. It runs after `azd deploy` because the webhook URL needs the
# function app's `blobs_extension` system key, which the Functions host creates only once the code
# with the blob trigger is deployed and running.
#
# azd exports the main.bicep outputs as environment variables. To run it by hand:
#   eval "$(azd env get-values)" && bash infra/hooks/postdeploy.sh
# Re-running is safe: the deployment is idempotent.
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?not set - run through azd, or eval \"\$(azd env get-values)\" first}"
: "${AZURE_FUNCTION_APP_NAME:?not set}"
: "${AZURE_STORAGE_ACCOUNT_NAME:?not set}"
: "${AZURE_EVENTGRID_SYSTEM_TOPIC_NAME:?not set}"
functionName="${AZURE_IMPORT_FUNCTION_NAME:-import_file}"
inputContainerName="${AZURE_INPUT_CONTAINER_NAME:-input}"
validateContainerName="${AZURE_VALIDATE_CONTAINER_NAME:-validate}"
deadLetterContainerName="${AZURE_DEADLETTER_CONTAINER_NAME:-deadletter}"
key_wait_attempts="${BLOBS_EXTENSION_KEY_ATTEMPTS:-20}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="$script_dir/../eventgrid-subscription.bicep"

echo "postdeploy: waiting for the blobs_extension key of $AZURE_FUNCTION_APP_NAME"
blobsExtensionKey=""
for ((attempt = 1; attempt <= key_wait_attempts; attempt++)); do
  blobsExtensionKey="$(az functionapp keys list \
    --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)"
  [[ -n "$blobsExtensionKey" ]] && break
  # The key appears when the host has started with the blob trigger; a request wakes it up.
  curl --silent --output /dev/null --max-time 30 "https://$(az functionapp show \
    --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query defaultHostName --output tsv 2>/dev/null)/" || true
  sleep 15
done
if [[ -z "$blobsExtensionKey" ]]; then
  echo "postdeploy: no blobs_extension key after $key_wait_attempts attempts. Is the import_file" \
    "function deployed? Check the app in the portal (Functions list, Log stream), then re-run this hook." >&2
  exit 1
fi
if [[ ! "$blobsExtensionKey" =~ ^[A-Za-z0-9_=+/-]+$ ]]; then
  echo "postdeploy: unexpected characters in the blobs_extension key" >&2
  exit 1
fi

# The key goes to az in a private temporary parameters file: never on a command line (ps, shell
# history) and never in the repository.
umask 077
params_file="$(mktemp)"
trap 'rm -f "$params_file"' EXIT
cat >"$params_file" <<JSON
{
  "\$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "systemTopicName": { "value": "$AZURE_EVENTGRID_SYSTEM_TOPIC_NAME" },
    "functionAppName": { "value": "$AZURE_FUNCTION_APP_NAME" },
    "functionName": { "value": "$functionName" },
    "storageAccountName": { "value": "$AZURE_STORAGE_ACCOUNT_NAME" },
    "inputContainerName": { "value": "$inputContainerName" },
    "validateContainerName": { "value": "$validateContainerName" },
    "deadLetterContainerName": { "value": "$deadLetterContainerName" },
    "blobsExtensionKey": { "value": "$blobsExtensionKey" }
  }
}
JSON
unset blobsExtensionKey

# Event Grid validates the webhook when the subscription is created; a cold Flex instance can miss
# that handshake, so retry a few times.
for attempt in 1 2 3; do
  echo "postdeploy: deploying the Event Grid subscription (attempt $attempt)"
  if az deployment group create \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --name "timebridge-eventgrid-subscription" \
    --template-file "$template" \
    --parameters "@$params_file" \
    --output none; then
    echo "postdeploy: BlobCreated events of '$inputContainerName' now trigger $functionName," \
      "and of '$validateContainerName' validate_file"
    exit 0
  fi
  sleep 30
done
echo "postdeploy: could not create the Event Grid subscription; see docs/deploying.md (second step by hand)" >&2
exit 1
