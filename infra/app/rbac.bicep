// Role assignments: least privilege, one line per need. docs/deploying.md ("Who may do what")
// justifies each of them. Names are deterministic, guid(scope.id, principalId, roleDefinitionId),
// so a re-deployment changes nothing and never creates duplicates.
//
// Function app identity (user-assigned, used by the code and the Functions host):
//   Storage Blob Data Contributor  containers input, output, error, archive,  the data the app imports/exports
//                                  validate, export-state                    (the dry-run drop zone, the export's bookkeeping)
//   Storage Blob Data Contributor  containers azure-webjobs-hosts, -secrets    Functions host state and keys
//   Storage Queue Data Contributor storage account                           blob-trigger poison queue (name chosen by the host)
//   Storage Table Data Contributor table exportledger                        the export ledger
//   Storage Table Data Contributor table crossref                            Tic-Tac cross-references
//   Storage Table Data Contributor table callbudget                          Tic-Tac's shared call budget
//   Key Vault Secrets User         key vault                                 read smarttid-api-key / smarttid-customer-key
//   Monitoring Metrics Publisher   Application Insights                      Entra ID telemetry ingestion
//   The app identity has NO role on the deployment-package container: the running code cannot
//   rewrite its own package.
// Deployment identity (user-assigned, used only by the platform to store and load the package):
//   Storage Blob Data Contributor  deployment-package container only
// Event Grid system topic identity (system-assigned):
//   Storage Blob Data Contributor  dead-letter container only
// Deploying person or pipeline (opt-in: deployerDataAccess, principal AZURE_PRINCIPAL_ID):
//   Storage Blob Data Contributor, Storage Table Data Contributor (storage account),
//   Key Vault Secrets Officer (key vault). principalType is left out, so a user, a group or a
//   service principal (CI) all work.

@description('Storage account name.')
param storageAccountName string

@description('Input container (the app reads and deletes the ERP files).')
param inputContainerName string

@description('Output container (the app writes the export files).')
param outputContainerName string

@description('Error container (the app writes error reports and rejected lines).')
param errorContainerName string

@description('Archive container (the app writes archived copies and receipts).')
param archiveContainerName string

@description('Validate container (the dry-run drop zone: the app reads files, writes reports, removes files).')
param validateContainerName string

@description('Export state container (the export\'s lock, staged runs and receipts).')
param exportStateContainerName string

@description('Container of the Flex Consumption deployment package (the deployment identity only).')
param deploymentContainerName string

@description('Functions host container (AzureWebJobsStorage): timer schedule status, locks, blob receipts.')
param hostsContainerName string = 'azure-webjobs-hosts'

@description('Functions host container (AzureWebJobsStorage): the host keys, e.g. blobs_extension.')
param secretsContainerName string = 'azure-webjobs-secrets'

@description('Dead-letter container the Event Grid system topic writes undeliverable events to.')
param deadLetterContainerName string

@description('Export ledger table.')
param exportLedgerTableName string

@description('Cross-reference table (Tic-Tac import).')
param xrefTableName string

@description('Call-budget table (Tic-Tac import).')
param budgetTableName string

@description('Key Vault name.')
param keyVaultName string

@description('Application Insights component name.')
param applicationInsightsName string

@description('Principal (object) id of the function app user-assigned managed identity.')
param appPrincipalId string

@description('Principal (object) id of the user-assigned identity the platform deploys the package with.')
param deploymentPrincipalId string

@description('Principal id of the Event Grid system topic system-assigned identity.')
param eventGridPrincipalId string

@description('Object id of the deploying user, group or service principal (AZURE_PRINCIPAL_ID).')
param deployerPrincipalId string = ''

@description('Give the deployer data-plane roles (blob, table, Key Vault Secrets Officer). Off by default.')
param deployerDataAccess bool = false

var storageBlobDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
var storageQueueDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
var storageTableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
var keyVaultSecretsUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
var keyVaultSecretsOfficer = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
var monitoringMetricsPublisher = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')

var grantDeployer = deployerDataAccess && !empty(deployerPrincipalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: inputContainerName
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: outputContainerName
}

resource errorContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: errorContainerName
}

resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: archiveContainerName
}

resource validateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: validateContainerName
}

resource exportStateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: exportStateContainerName
}

resource hostsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: hostsContainerName
}

resource secretsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: secretsContainerName
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deploymentContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource exportLedgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: exportLedgerTableName
}

resource xrefTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: xrefTableName
}

resource budgetTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: budgetTableName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// ---- function app identity: only the containers and the table it uses -------------------------

resource appInputWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: inputContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appOutputWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: outputContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appErrorWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(errorContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: errorContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appArchiveWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(archiveContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: archiveContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appValidateWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(validateContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: validateContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appExportStateWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(exportStateContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: exportStateContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appHostsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostsContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: hostsContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecretsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secretsContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: secretsContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: storageQueueDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appLedgerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(exportLedgerTable.id, appPrincipalId, storageTableDataContributor)
  scope: exportLedgerTable
  properties: {
    roleDefinitionId: storageTableDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appXrefWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(xrefTable.id, appPrincipalId, storageTableDataContributor)
  scope: xrefTable
  properties: {
    roleDefinitionId: storageTableDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appBudgetWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(budgetTable.id, appPrincipalId, storageTableDataContributor)
  scope: budgetTable
  properties: {
    roleDefinitionId: storageTableDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: keyVaultSecretsUser
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMonitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: monitoringMetricsPublisher
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- deployment identity: the package container, nothing else ---------------------------------

resource deploymentPackageWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, deploymentPrincipalId, storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: deploymentPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Event Grid system topic: dead-lettering with its managed identity (no shared keys) ---------

resource eventGridDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- deploying person or pipeline (opt-in): inspect files and the ledger, set the secrets -------
// No principalType: Azure resolves it, so a user, a group and a CI service principal all work.

resource deployerBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(storage.id, deployerPrincipalId, storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: deployerPrincipalId
  }
}

resource deployerTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(storage.id, deployerPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: storageTableDataContributor
    principalId: deployerPrincipalId
  }
}

resource deployerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: keyVaultSecretsOfficer
    principalId: deployerPrincipalId
  }
}
