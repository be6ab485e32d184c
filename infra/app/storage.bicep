// Storage account for everything TimeBridge stores: the ERP files (input/output/error/archive
// containers), the export ledger table, the Functions host state (AzureWebJobsStorage) and the
// Flex Consumption deployment package. Shared-key (account key / SAS) access is disabled: every
// client — the function app, Event Grid dead-lettering and the people who debug — uses Entra ID
// and the data-plane roles in rbac.bicep.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication, and so data residency. Standard_GRS (default) keeps a copy in the paired region (for West Europe: North Europe; both in the EU); Standard_ZRS or Standard_LRS keep every copy in the deployment region (ZRS across its availability zones) where the data must not leave it.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Public network access (Enabled by default; Disabled only with the private network of main.bicep vnetEnabled).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Container the ERP drops CSV files into (the import function triggers on it).')
@minLength(3)
@maxLength(63)
param inputContainerName string

@description('Container the export function writes ledger files to.')
@minLength(3)
@maxLength(63)
param outputContainerName string

@description('Container for files that failed to import, with their error reports.')
@minLength(3)
@maxLength(63)
param errorContainerName string

@description('Container for imported files and their receipts (<file>/<etag>/receipt.json).')
@minLength(3)
@maxLength(63)
param archiveContainerName string

@description('Dry-run drop zone: files dropped here get a report beside them and are removed (VALIDATE_CONTAINER).')
@minLength(3)
@maxLength(63)
param validateContainerName string

@description('The export\'s bookkeeping: lock, staged runs, receipts (EXPORT_STATE_CONTAINER).')
@minLength(3)
@maxLength(63)
param exportStateContainerName string

@description('Container Event Grid dead-letters undeliverable BlobCreated events into.')
@minLength(3)
@maxLength(63)
param deadLetterContainerName string

@description('Container the Flex Consumption plan deploys the app package from.')
@minLength(3)
@maxLength(63)
param deploymentContainerName string

@description('Table holding the export ledger (which entries were already exported).')
@minLength(3)
@maxLength(63)
param exportLedgerTableName string

@description('Table holding the Tic-Tac cross-references (ERP keys and values Tic-Tac cannot hold).')
@minLength(3)
@maxLength(63)
param xrefTableName string

@description('Table holding the rolling 24-hour call budget of a target with a daily call limit.')
@minLength(3)
@maxLength(63)
param budgetTableName string

@description('Functions host containers (AzureWebJobsStorage). Declared here so the app identity needs no account-wide blob role to create them.')
param hostContainerNames array = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]

// ---- retention of personal data (docs/administrator.md "Personal data"; docs/deploying.md "Data protection") ----
@description('Days a deleted blob or container stays restorable (soft delete) before it is purged.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 30

@description('Days after its last change an archived input file and its receipt are deleted.')
@minValue(1)
param archiveRetentionDays int = 180

@description('Days after its last change an error report, rejected-lines file or rejected file is deleted.')
@minValue(1)
param errorRetentionDays int = 90

@description('Days a previous blob version (overwritten or deleted data) and a snapshot are kept.')
@minValue(1)
param versionRetentionDays int = 30

@description('Safety net: days after which a file still in the input container is deleted (an import removes it within minutes; one left by a refused configuration or a dead-lettered event would keep its CPR numbers for ever).')
@minValue(7)
param inputRetentionDays int = 30

@description('Days a dead-lettered Event Grid event (it names the file) is kept in the dead-letter container.')
@minValue(1)
param deadLetterRetentionDays int = 30

@description('Log Analytics workspace receiving the blob, queue and table resource logs.')
param logAnalyticsWorkspaceId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: No VNet or private endpoints in this deployment: the Flex Consumption app and the Event Grid system topic reach the account over its public endpoint. Shared keys are disabled, so every request needs Entra ID + the RBAC roles in rbac.bicep.
  // checkov:skip=CKV_AZURE_59: Public network access stays enabled for the same reason as CKV_AZURE_35; anonymous blob access is off (allowBlobPublicAccess: false) and shared keys are disabled.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // The files are business records: keep deleted and overwritten blobs restorable.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: inputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: outputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource errorContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: errorContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: archiveContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource validateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: validateContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource exportStateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: exportStateContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for hostContainerName in hostContainerNames: {
  parent: blobService
  name: hostContainerName
  properties: {
    publicAccess: 'None'
  }
}]

// Lifecycle management: nothing with personal data is kept for ever. With versioning on, deleting
// a base blob turns it into a previous version, which the version rule removes later; soft delete
// then keeps it restorable for deleteRetentionDays. So the longest an archived file's bytes exist
// is archiveRetentionDays + versionRetentionDays + deleteRetentionDays (docs/deploying.md).
// The archive, error, validate and dead-letter containers are aged out; the input container has a
// safety net only (an import empties it within minutes); the output container belongs to the ERP.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'archive-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              // the export's receipts age out like the import's
              prefixMatch: [
                '${archiveContainerName}/'
                '${exportStateContainerName}/receipts/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: archiveRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'error-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              // the dry-run reports in the validate container quote values too: the same retention
              prefixMatch: [
                '${errorContainerName}/'
                '${validateContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: errorRetentionDays
                }
              }
            }
          }
        }
        {
          // a file the import never removed: its configuration was refused, its event dead-lettered
          name: 'input-safety-net'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${inputContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: inputRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'deadletter-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deadLetterRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'previous-versions-and-snapshots'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: versionRetentionDays
                }
              }
              snapshot: {
                delete: {
                  daysAfterCreationGreaterThan: versionRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource exportLedgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: exportLedgerTableName
}

resource xrefTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: xrefTableName
}

resource budgetTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: budgetTableName
}

// Resource logs (who read, wrote or deleted which blob; failed requests) go to Log Analytics.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'table-to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output primaryBlobEndpoint string = storage.properties.primaryEndpoints.blob
output primaryQueueEndpoint string = storage.properties.primaryEndpoints.queue
output primaryTableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
output inputContainerName string = inputContainer.name
output outputContainerName string = outputContainer.name
output errorContainerName string = errorContainer.name
output archiveContainerName string = archiveContainer.name
output validateContainerName string = validateContainer.name
output exportStateContainerName string = exportStateContainer.name
output exportLedgerTableName string = exportLedgerTable.name
output xrefTableName string = xrefTable.name
output budgetTableName string = budgetTable.name
