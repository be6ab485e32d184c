// TimeBridge: ERP CSV import into SmartTID and timed ledger export, on Azure Functions Flex
// Consumption. Deployed by `azd up` into the resource group azd selects (AZURE_RESOURCE_GROUP).
// Step 2 (the Event Grid subscription, which needs the deployed code's webhook key) runs in the
// azd postdeploy hook: infra/hooks/postdeploy.sh -> infra/eventgrid-subscription.bicep.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('azd environment name (AZURE_ENV_NAME); part of the resource token and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Azure region for all resources (must offer the Flex Consumption plan).')
param location string = resourceGroup().location

@description('Object id of the deploying user, group or service principal (AZURE_PRINCIPAL_ID, filled by azd). Used only when deployerDataAccess is true.')
param principalId string = ''

@description('Give the deployer (principalId) data-plane roles: Storage Blob/Table Data Contributor and Key Vault Secrets Officer. Off by default; opt in with TIMEBRIDGE_DEPLOYER_DATA_ACCESS=true (docs/deploying.md).')
param deployerDataAccess bool = false

// ---- storage ------------------------------------------------------------------------------------
@description('Container the ERP drops CSV files into (INPUT_CONTAINER).')
@minLength(3)
@maxLength(63)
param inputContainerName string = 'input'

@description('Container for export files (OUTPUT_CONTAINER).')
@minLength(3)
@maxLength(63)
param outputContainerName string = 'output'

@description('Container for rejected files and error reports (ERROR_CONTAINER).')
@minLength(3)
@maxLength(63)
param errorContainerName string = 'error'

@description('Container for imported files and receipts (ARCHIVE_CONTAINER).')
@minLength(3)
@maxLength(63)
param archiveContainerName string = 'archive'

@description('Dry-run drop zone: a file dropped here gets a report of what it would do (VALIDATE_CONTAINER).')
@minLength(3)
@maxLength(63)
param validateContainerName string = 'validate'

@description('The export\'s bookkeeping: lock, staged runs, receipts (EXPORT_STATE_CONTAINER).')
@minLength(3)
@maxLength(63)
param exportStateContainerName string = 'export-state'

@description('Container for Event Grid events that could not be delivered.')
@minLength(3)
@maxLength(63)
param deadLetterContainerName string = 'deadletter'

@description('Export ledger table (EXPORT_LEDGER_TABLE).')
@minLength(3)
@maxLength(63)
param exportLedgerTableName string = 'exportledger'

@description('Cross-reference table of the Tic-Tac import (XREF_TABLE).')
@minLength(3)
@maxLength(63)
param xrefTableName string = 'crossref'

@description('Call-budget table of targets with a daily call limit (BUDGET_TABLE).')
@minLength(3)
@maxLength(63)
param budgetTableName string = 'callbudget'

@description('Storage replication, and so data residency: Standard_GRS (default) copies every blob and table to the paired region (in the EU for EU regions); Standard_ZRS (zone-redundant) or Standard_LRS keep the data in the deployment region only (docs/administrator.md "Personal data").')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

// ---- retention of personal data (docs/administrator.md "Personal data"; docs/deploying.md "Data protection") ----
@description('Days an archived input file and its receipt are kept after their last change.')
@minValue(1)
param archiveRetentionDays int = 180

@description('Days an error report, rejected-lines file or rejected file is kept after its last change.')
@minValue(1)
param errorRetentionDays int = 90

@description('Days a previous blob version (overwritten or deleted data) or snapshot is kept.')
@minValue(1)
param versionRetentionDays int = 30

@description('Safety net: days after which a file still in the input container is deleted (a file left after a refused configuration or a dead-lettered event).')
@minValue(7)
param inputRetentionDays int = 30

@description('Days a dead-lettered Event Grid event is kept in the dead-letter container.')
@minValue(1)
param deadLetterRetentionDays int = 30

@description('Days a deleted blob or container stays restorable (soft delete).')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 30

@description('Days Log Analytics keeps logs and telemetry (30 is included in the price).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Send the CPR number (Employee position 8) to the target system (SEND_CPR_NUMBER). Off by default.')
param sendCprNumber bool = false

@description('Largest accepted input file in bytes (MAX_FILE_BYTES). At most 140 MiB, what the largest instance (4,096 MB) allows (docs/design.md: Large files); set it with instanceMemoryMB.')
@minValue(1)
@maxValue(146800640)
param maxFileBytes int = 67108864

@description('Seconds an import (or a resumption) writes before it defers the rest to the resume_deferred timer (IMPORT_TIME_LIMIT_SECONDS); at most 1500, within host.json\'s 30-minute functionTimeout.')
@minValue(1)
@maxValue(1500)
param importTimeLimitSeconds int = 1500

// ---- target system ------------------------------------------------------------------------------
@description('Target system (TARGET_SYSTEM).')
@allowed([
  'smarttid'
  'tictac'
])
param targetSystem string = 'smarttid'

@description('Tic-Tac Mobile API root (TICTAC_BASE_URL).')
param tictacBaseUrl string = 'https://www.tictacmobile.com/api/rest'

@description('Tic-Tac export: project numbers (comma-separated) whose time is absence — TimeLedgerEntry only, Type Absence (TICTAC_ABSENCE_PROJECTS).')
@maxLength(2000)
param tictacAbsenceProjects string = ''

@description('Tic-Tac export: activity type → WorkTypeCode as TYPE=CODE pairs separated by commas (TICTAC_WORKTYPE_MAP).')
@maxLength(2000)
param tictacWorktypeMap string = 'WORKHOURS=NORMAL,OVERTIME=OVERTIME1'

@description('Tic-Tac export: only attested registrations are exported (TICTAC_EXPORT_ATTESTED_ONLY).')
param tictacExportAttestedOnly bool = true

@description('Tic-Tac export: entry dates read this many days back (TICTAC_EXPORT_LOOKBACK_DAYS); older rows are final.')
@minValue(1)
@maxValue(3660)
param tictacExportLookbackDays int = 400

@description('Tic-Tac export: entry dates read this many days ahead (TICTAC_EXPORT_FORWARD_DAYS).')
@minValue(0)
@maxValue(366)
param tictacExportForwardDays int = 31

@description('Tic-Tac export: a daily reconcile missing more than this share (%) of the rows it knew makes no reversals (TICTAC_RECONCILE_MAX_LOSS_PERCENT).')
@minValue(0)
@maxValue(100)
param tictacReconcileMaxLossPercent int = 20

@description('Tic-Tac export: date of correction lines — the registration\'s own (original) or the run\'s (run) (EXPORT_CORRECTION_DATE).')
@allowed([
  'original'
  'run'
])
param exportCorrectionDate string = 'original'

@description('Tic-Tac calls TimeBridge allows itself per rolling 24 hours (TICTAC_DAILY_CALL_BUDGET; Tic-Tac allows 500).')
@minValue(10)
param tictacDailyCallBudget int = 400

@description('userName of a new Tic-Tac user (TICTAC_USERNAME_TEMPLATE): {email}, {code}, {prefix}.')
param tictacUsernameTemplate string = '{email}'

@description('Company prefix of a userName made from the employee code (TICTAC_USERNAME_PREFIX).')
param tictacUsernamePrefix string = ''

@description('SmartTID API base URL (SMARTTID_BASE_URL).')
param smarttidBaseUrl string = 'https://smartapi.smarttid.dk'

@description('DEVICEID header (SMARTTID_DEVICE_ID); empty = the customer key.')
param smarttidDeviceId string = ''

@description('HTTP timeout per request in seconds (HTTP_TIMEOUT_SECONDS).')
@minValue(1)
param httpTimeoutSeconds int = 30

@description('Attempts per HTTP request, including the first (HTTP_MAX_ATTEMPTS).')
@minValue(1)
@maxValue(10)
param httpMaxAttempts int = 5

@description('Largest answer read from the target system in bytes; a longer one is refused while it streams in (MAX_ANSWER_BYTES).')
@minValue(65536)
@maxValue(536870912)
param maxAnswerBytes int = 33554432

@description('Concurrent writes to SmartTID per file (WRITE_CONCURRENCY).')
@minValue(1)
@maxValue(32)
param writeConcurrency int = 4

// ---- export -------------------------------------------------------------------------------------
@description('NCRONTAB schedule of the export timer (EXPORT_SCHEDULE), UTC.')
param exportSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule (UTC) of the timer that applies lines deferred for the call budget (RESUME_SCHEDULE).')
param resumeSchedule string = '0 */15 * * * *'

@description('Encoding of export files (EXPORT_ENCODING).')
@allowed([
  'utf-8-sig'
  'cp1252'
])
param exportEncoding string = 'utf-8-sig'

@description('Decimal separator in export files (EXPORT_DECIMAL_SEPARATOR).')
@allowed([
  ','
  '.'
])
param exportDecimalSeparator string = ','

@description('Write an export file even when there is nothing new (EXPORT_WRITE_EMPTY_FILE).')
param exportWriteEmptyFile bool = false

@description('Ledger entries marked as exported per batch (EXPORT_MARK_BATCH_SIZE).')
@minValue(1)
@maxValue(1000)
param exportMarkBatchSize int = 100

@description('Days an inactive employee\'s time ledger is still read by the SmartTID export (EXPORT_INACTIVE_GRACE_DAYS).')
@minValue(0)
@maxValue(3660)
param exportInactiveGraceDays int = 62

// ---- secrets ------------------------------------------------------------------------------------
@description('Seconds a secret read from Key Vault is cached (SECRET_CACHE_TTL_SECONDS).')
@minValue(0)
param secretCacheTtlSeconds int = 300

@description('Key Vault public network access (Enabled needed without VNet; see docs/deploying.md).')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

// ---- private network (infra/app/network.bicep; docs/deploying.md "Private network") -------------------
@description('Put the function app in a virtual network and reach storage and Key Vault through private endpoints (as the Flex Consumption quickstarts offer). Off by default.')
param vnetEnabled bool = false

@description('Storage public network access. Keep Enabled without vnetEnabled; with it, Disabled closes the public endpoint (Event Grid and azd deployments then need the trusted-service bypass and a network path, see docs/deploying.md).')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

// ---- alerts and the dashboard (infra/app/alerts.bicep; docs/administrator.md "Telemetry, alerts and the dashboard") ----
@description('E-mail address of the administrator who receives TimeBridge alerts (azd: TIMEBRIDGE_ALERT_EMAIL).')
@minLength(3)
param alertEmailAddress string

@description('Hours records of a file may wait in a deferral before the administrator is alerted.')
@minValue(1)
@maxValue(168)
param deferralAlertHours int = 24

// ---- hosting ------------------------------------------------------------------------------------
@description('Name of the blob-trigger function Event Grid delivers to (postdeploy hook).')
param importFunctionName string = 'import_file'

@description('Flex Consumption maximum instance count.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance memory in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var resourceToken = toLower(uniqueString(resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// The identity the code and the Functions host run as (storage data, Key Vault, telemetry).
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-func-${resourceToken}'
  location: location
  tags: tags
}

// A second identity only for the deployment package: the platform stores and loads the package
// with it; the app identity has no role on that container (docs/deploying.md, "Who may do what").
resource deploymentIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-deploy-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    retentionInDays: logRetentionDays
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    skuName: storageSkuName
    publicNetworkAccess: storagePublicNetworkAccess
    inputContainerName: inputContainerName
    outputContainerName: outputContainerName
    errorContainerName: errorContainerName
    archiveContainerName: archiveContainerName
    validateContainerName: validateContainerName
    exportStateContainerName: exportStateContainerName
    deadLetterContainerName: deadLetterContainerName
    deploymentContainerName: deploymentContainerName
    exportLedgerTableName: exportLedgerTableName
    xrefTableName: xrefTableName
    budgetTableName: budgetTableName
    deleteRetentionDays: deleteRetentionDays
    archiveRetentionDays: archiveRetentionDays
    errorRetentionDays: errorRetentionDays
    versionRetentionDays: versionRetentionDays
    inputRetentionDays: inputRetentionDays
    deadLetterRetentionDays: deadLetterRetentionDays
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    publicNetworkAccess: keyVaultPublicNetworkAccess
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    location: location
    tags: tags
    name: 'evgt-${resourceToken}'
    storageAccountName: storage.outputs.name
  }
}

module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  params: {
    location: location
    tags: tags
    name: 'vnet-${resourceToken}'
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    inputContainerName: storage.outputs.inputContainerName
    outputContainerName: storage.outputs.outputContainerName
    errorContainerName: storage.outputs.errorContainerName
    archiveContainerName: storage.outputs.archiveContainerName
    validateContainerName: storage.outputs.validateContainerName
    exportStateContainerName: storage.outputs.exportStateContainerName
    deploymentContainerName: storage.outputs.deploymentContainerName
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    exportLedgerTableName: storage.outputs.exportLedgerTableName
    xrefTableName: storage.outputs.xrefTableName
    budgetTableName: storage.outputs.budgetTableName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: appIdentity.properties.principalId
    deploymentPrincipalId: deploymentIdentity.properties.principalId
    eventGridPrincipalId: eventGrid.outputs.principalId
    deployerPrincipalId: principalId
    deployerDataAccess: deployerDataAccess
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    actionGroupName: 'ag-${resourceToken}'
    namePrefix: 'timebridge-${resourceToken}'
    alertEmailAddress: alertEmailAddress
    deferralAlertHours: deferralAlertHours
    eventGridSystemTopicId: eventGrid.outputs.id
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  // The app must not start before its identity may read storage (deployment package, host state).
  dependsOn: [
    rbac
  ]
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    name: functionAppName
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    identityId: appIdentity.id
    identityClientId: appIdentity.properties.clientId
    deploymentIdentityId: deploymentIdentity.id
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    subnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    inputContainerName: storage.outputs.inputContainerName
    outputContainerName: storage.outputs.outputContainerName
    errorContainerName: storage.outputs.errorContainerName
    archiveContainerName: storage.outputs.archiveContainerName
    validateContainerName: storage.outputs.validateContainerName
    exportStateContainerName: storage.outputs.exportStateContainerName
    exportLedgerTableName: storage.outputs.exportLedgerTableName
    xrefTableName: storage.outputs.xrefTableName
    budgetTableName: storage.outputs.budgetTableName
    maxFileBytes: maxFileBytes
    targetSystem: targetSystem
    smarttidBaseUrl: smarttidBaseUrl
    smarttidDeviceId: smarttidDeviceId
    tictacBaseUrl: tictacBaseUrl
    tictacDailyCallBudget: tictacDailyCallBudget
    tictacUsernameTemplate: tictacUsernameTemplate
    tictacUsernamePrefix: tictacUsernamePrefix
    httpTimeoutSeconds: httpTimeoutSeconds
    httpMaxAttempts: httpMaxAttempts
    maxAnswerBytes: maxAnswerBytes
    writeConcurrency: writeConcurrency
    exportSchedule: exportSchedule
    resumeSchedule: resumeSchedule
    exportEncoding: exportEncoding
    exportDecimalSeparator: exportDecimalSeparator
    exportWriteEmptyFile: exportWriteEmptyFile
    exportMarkBatchSize: exportMarkBatchSize
    exportInactiveGraceDays: exportInactiveGraceDays
    importTimeLimitSeconds: importTimeLimitSeconds
    exportCorrectionDate: exportCorrectionDate
    tictacExportAttestedOnly: tictacExportAttestedOnly
    tictacAbsenceProjects: tictacAbsenceProjects
    tictacWorktypeMap: tictacWorktypeMap
    tictacExportLookbackDays: tictacExportLookbackDays
    tictacExportForwardDays: tictacExportForwardDays
    tictacReconcileMaxLossPercent: tictacReconcileMaxLossPercent
    secretCacheTtlSeconds: secretCacheTtlSeconds
    sendCprNumber: sendCprNumber
  }
}

// ---- outputs: azd stores them in .azure/<env>/.env; the postdeploy hook and the docs use them ----
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = appIdentity.properties.clientId
output AZURE_IMPORT_FUNCTION_NAME string = importFunctionName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_INPUT_CONTAINER_NAME string = storage.outputs.inputContainerName
output AZURE_OUTPUT_CONTAINER_NAME string = storage.outputs.outputContainerName
output AZURE_ERROR_CONTAINER_NAME string = storage.outputs.errorContainerName
output AZURE_ARCHIVE_CONTAINER_NAME string = storage.outputs.archiveContainerName
output AZURE_VALIDATE_CONTAINER_NAME string = storage.outputs.validateContainerName
output AZURE_EXPORT_STATE_CONTAINER_NAME string = storage.outputs.exportStateContainerName
output AZURE_DEADLETTER_CONTAINER_NAME string = storage.outputs.deadLetterContainerName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsWorkspaceName
output AZURE_ALERT_RULE_NAMES array = alerts.outputs.alertRuleNames
