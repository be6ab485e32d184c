// Event Grid system topic for the storage account's events. The subscription that routes
// BlobCreated events of the input container to the import_file blob trigger is created in a second
// step, after the code is deployed (the webhook key only exists then): see
// infra/eventgrid-subscription.bicep and infra/hooks/postdeploy.sh.

@description('Azure region (must be the storage account region).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('System topic name.')
param name string

@description('Storage account whose events the topic publishes.')
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  // The identity writes undeliverable events to the dead-letter container (shared keys are off).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
output principalId string = systemTopic.identity.principalId
