// Step 2 of the deployment: the Event Grid subscriptions that send BlobCreated events of the INPUT
// container to the import_file blob trigger, and of the VALIDATE container (the dry-run drop zone) to
// the validate_file blob trigger (blob triggers with source EventGrid).
//
// It cannot be part of main.bicep: the webhook URL needs the function app's `blobs_extension`
// system key, which the Functions host creates only after the code (with the blob trigger) has
// been deployed and started. The azd postdeploy hook (infra/hooks/postdeploy.sh) reads the key with
// `az functionapp keys list` and deploys this file with it; see docs/deploying.md to run it by hand.
targetScope = 'resourceGroup'

@description('Event Grid system topic of the storage account (output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Function app name (output AZURE_FUNCTION_APP_NAME).')
param functionAppName string

@description('Blob-trigger function that imports files.')
param functionName string = 'import_file'

@description('Storage account name (output AZURE_STORAGE_ACCOUNT_NAME).')
param storageAccountName string

@description('Only blobs created in this container trigger an import (INPUT_CONTAINER).')
@minLength(3)
@maxLength(63)
param inputContainerName string = 'input'

@description('Only blobs created in this container trigger a dry run (VALIDATE_CONTAINER).')
@minLength(3)
@maxLength(63)
param validateContainerName string = 'validate'

@description('Blob-trigger function that writes dry-run reports.')
param validateFunctionName string = 'validate_file'

@description('Event subscription name of the dry-run drop zone.')
param validateSubscriptionName string = 'validate-file-blob-created'

@description('Container for events Event Grid could not deliver.')
@minLength(3)
@maxLength(63)
param deadLetterContainerName string = 'deadletter'

@description('The blobs_extension system key of the function app. Never stored in a file in the repo.')
@secure()
param blobsExtensionKey string

@description('Event subscription name.')
param subscriptionName string = 'import-file-blob-created'

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying an event before dead-lettering it.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource blobCreatedSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the input container: the function's own writes to output, error and archive (and the
      // dead-letter and deployment containers) never trigger an import.
      subjectBeginsWith: '/blobServices/default/containers/${inputContainerName}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead-lettering authenticates with the system topic's managed identity (shared keys are off);
    // rbac.bicep grants it Storage Blob Data Contributor on the dead-letter container.
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource validateSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: validateSubscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${validateFunctionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // The reports the function writes beside each file land here too; they carry the metadata
      // timebridge=dry-run-report and the function skips them.
      subjectBeginsWith: '/blobServices/default/containers/${validateContainerName}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output subscriptionName string = blobCreatedSubscription.name
output validateSubscriptionName string = validateSubscription.name
