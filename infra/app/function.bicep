// Flex Consumption plan + the TimeBridge function app (Python 3.11, v2 programming model).
//
// Flex Consumption notes:
// - The runtime (python 3.11) comes from functionAppConfig.runtime. FUNCTIONS_WORKER_RUNTIME and
//   FUNCTIONS_EXTENSION_VERSION are NOT app settings on Flex ("Flex Consumption plan deprecations"
//   in the Functions app settings reference), nor are WEBSITE_RUN_FROM_PACKAGE / WEBSITE_CONTENT*.
// - siteConfig.ftpsState is rejected for Flex sites, so FTP is switched off through the
//   basicPublishingCredentialsPolicies below instead.
// - Every storage connection is identity based (user-assigned managed identity). No account key or
//   key-bearing connection string is ever set; the storage account has shared keys disabled anyway.
// - Two user-assigned identities: identityId is what the code and the host use (AZURE_CLIENT_ID and
//   the *__clientId settings); deploymentIdentityId is used only by the platform for the package
//   (functionAppConfig.deployment) and is the only identity with a role on that container.

@description('Azure region.')
param location string

@description('Tags applied to every resource (the app also gets azd-service-name).')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app.')
param name string

@description('azd service name (azure.yaml) the app is tagged with.')
param serviceName string = 'api'

@description('Storage account holding the data containers, the export ledger, host state and the app package.')
param storageAccountName string

@description('Blob container the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Resource id of the user-assigned identity the platform stores and loads the deployment package with (no other role).')
param deploymentIdentityId string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Key Vault URI holding the SmartTID secrets.')
param keyVaultUri string

@description('Python version (functionAppConfig.runtime.version).')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Upper bound for scale-out (Flex Consumption).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Zone-redundant Flex Consumption plan (only in regions that support it for Flex).')
param zoneRedundant bool = false

@description('Subnet the app integrates with (main.bicep vnetEnabled); empty: no virtual network.')
param subnetId string = ''

@description('Memory per instance in MB (Flex Consumption).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// ---- settings read by shared/platform/config.py (names must match; tests/test_infra.py cross-checks) ----
param inputContainerName string
param outputContainerName string
param errorContainerName string
param archiveContainerName string
param validateContainerName string
param exportStateContainerName string
param exportLedgerTableName string
param xrefTableName string
param budgetTableName string
param maxFileBytes int
param targetSystem string
param smarttidBaseUrl string
param smarttidDeviceId string
param tictacBaseUrl string
param tictacDailyCallBudget int
param tictacUsernameTemplate string
param tictacUsernamePrefix string
param httpTimeoutSeconds int
param httpMaxAttempts int
param maxAnswerBytes int
param writeConcurrency int
param exportSchedule string
param resumeSchedule string
param exportEncoding string
param exportDecimalSeparator string
param exportWriteEmptyFile bool
param exportMarkBatchSize int
param exportInactiveGraceDays int
param importTimeLimitSeconds int
param exportCorrectionDate string
param tictacExportAttestedOnly bool
param tictacAbsenceProjects string
param tictacWorktypeMap string
param tictacExportLookbackDays int
param tictacExportForwardDays int
param tictacReconcileMaxLossPercent int
param secretCacheTtlSeconds int
param sendCprNumber bool

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is the zoneRedundant parameter (default false): Flex Consumption supports it only in some regions; enable it where the region allows.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState; FTP (and basic-auth SCM) publishing is disabled by the basicPublishingCredentialsPolicies 'ftp' and 'scm' below.
  // checkov:skip=CKV_AZURE_18: HTTP/2 is not set: Flex Consumption only accepts a subset of siteConfig, and the app's only inbound caller is the Event Grid webhook delivery, not browsers.
  // checkov:skip=CKV_AZURE_67: Same as CKV_AZURE_18 (HTTP/2 for the function app).
  // checkov:skip=CKV_AZURE_222: Event Grid delivers BlobCreated events to the public webhook endpoint, which requires the blobs_extension system key; there are no other HTTP functions and no VNet in this deployment.
  // checkov:skip=CKV_AZURE_17: Event Grid webhook deliveries cannot present client certificates; the endpoint is protected by the blobs_extension key.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per event; instance counts are platform-managed (maximumInstanceCount), not a fixed App Service plan minimum.
  // checkov:skip=CKV_AZURE_213: No HTTP-triggered functions to probe; Flex Consumption instances are event-driven and replaced by the platform.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
      '${deploymentIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // the private-network option: outbound traffic through the VNet (storage, Key Vault by private endpoint)
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      // App settings (environment variables). Names must match shared/platform/config.py;
      // tests/test_infra.py cross-checks them against shared.platform.config.setting_names().
      appSettings: [
        // -- read by the Functions host / platform, not by shared/platform/config.py --
        // Host storage (AzureWebJobsStorage), identity based.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Telemetry with Entra ID (local auth is disabled on the component).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Summary events, see shared/platform/telemetry.py: the Python worker runs the Azure Monitor distro and exports
        // only the logger named here, with the identity above; the host logs everything else as before
        // and records each invocation, so the worker sends no traces or metrics.
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME'
          value: 'timebridge.events'
        }
        {
          name: 'OTEL_TRACES_EXPORTER'
          value: 'none'
        }
        {
          name: 'OTEL_METRICS_EXPORTER'
          value: 'none'
        }
        // The blob trigger / blob bindings connection "IntegrationStorage" (identity based). The code
        // reads the blob and table URIs itself; the queue URI, credential and clientId are read by the
        // storage extension (poison queue) and by the SDK credential.
        {
          name: 'IntegrationStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'IntegrationStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'IntegrationStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'IntegrationStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'IntegrationStorage__clientId'
          value: identityClientId
        }

        // -- read by shared/platform/config.py --
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'KEY_VAULT_URL'
          value: keyVaultUri
        }
        {
          name: 'SECRET_CACHE_TTL_SECONDS'
          value: string(secretCacheTtlSeconds)
        }
        {
          name: 'INPUT_CONTAINER'
          value: inputContainerName
        }
        {
          name: 'OUTPUT_CONTAINER'
          value: outputContainerName
        }
        {
          name: 'ERROR_CONTAINER'
          value: errorContainerName
        }
        {
          name: 'ARCHIVE_CONTAINER'
          value: archiveContainerName
        }
        {
          name: 'VALIDATE_CONTAINER'
          value: validateContainerName
        }
        {
          name: 'EXPORT_STATE_CONTAINER'
          value: exportStateContainerName
        }
        {
          name: 'MAX_FILE_BYTES'
          value: string(maxFileBytes)
        }
        {
          name: 'IMPORT_TIME_LIMIT_SECONDS'
          value: string(importTimeLimitSeconds)
        }
        {
          name: 'TARGET_SYSTEM'
          value: targetSystem
        }
        {
          name: 'SMARTTID_BASE_URL'
          value: smarttidBaseUrl
        }
        {
          name: 'SMARTTID_DEVICE_ID'
          value: smarttidDeviceId
        }
        {
          name: 'TICTAC_BASE_URL'
          value: tictacBaseUrl
        }
        {
          name: 'TICTAC_DAILY_CALL_BUDGET'
          value: string(tictacDailyCallBudget)
        }
        {
          name: 'TICTAC_USERNAME_TEMPLATE'
          value: tictacUsernameTemplate
        }
        {
          name: 'TICTAC_USERNAME_PREFIX'
          value: tictacUsernamePrefix
        }
        {
          name: 'XREF_TABLE'
          value: xrefTableName
        }
        {
          name: 'BUDGET_TABLE'
          value: budgetTableName
        }
        {
          name: 'HTTP_TIMEOUT_SECONDS'
          value: string(httpTimeoutSeconds)
        }
        {
          name: 'HTTP_MAX_ATTEMPTS'
          value: string(httpMaxAttempts)
        }
        {
          name: 'MAX_ANSWER_BYTES'
          value: string(maxAnswerBytes)
        }
        {
          name: 'WRITE_CONCURRENCY'
          value: string(writeConcurrency)
        }
        {
          name: 'EXPORT_SCHEDULE'
          value: exportSchedule
        }
        {
          name: 'RESUME_SCHEDULE'
          value: resumeSchedule
        }
        {
          name: 'EXPORT_ENCODING'
          value: exportEncoding
        }
        {
          name: 'EXPORT_DECIMAL_SEPARATOR'
          value: exportDecimalSeparator
        }
        {
          name: 'EXPORT_WRITE_EMPTY_FILE'
          value: exportWriteEmptyFile ? 'true' : 'false'
        }
        {
          name: 'EXPORT_LEDGER_TABLE'
          value: exportLedgerTableName
        }
        {
          name: 'EXPORT_MARK_BATCH_SIZE'
          value: string(exportMarkBatchSize)
        }
        {
          name: 'SEND_CPR_NUMBER'
          value: sendCprNumber ? 'true' : 'false'
        }
        {
          name: 'EXPORT_INACTIVE_GRACE_DAYS'
          value: string(exportInactiveGraceDays)
        }
        {
          name: 'EXPORT_CORRECTION_DATE'
          value: exportCorrectionDate
        }
        {
          name: 'TICTAC_EXPORT_ATTESTED_ONLY'
          value: string(tictacExportAttestedOnly)
        }
        {
          name: 'TICTAC_ABSENCE_PROJECTS'
          value: tictacAbsenceProjects
        }
        {
          name: 'TICTAC_WORKTYPE_MAP'
          value: tictacWorktypeMap
        }
        {
          name: 'TICTAC_EXPORT_LOOKBACK_DAYS'
          value: string(tictacExportLookbackDays)
        }
        {
          name: 'TICTAC_EXPORT_FORWARD_DAYS'
          value: string(tictacExportForwardDays)
        }
        {
          name: 'TICTAC_RECONCILE_MAX_LOSS_PERCENT'
          value: string(tictacReconcileMaxLossPercent)
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: deploymentIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No FTP and no basic-auth (publishing profile) deployments: azd / Core Tools deploy with Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
