// Key Vault for the SmartTID API secrets (smarttid-api-key, smarttid-customer-key).
// The template creates NO secrets: an administrator sets them after deployment (docs/deploying.md).
// Access is Azure RBAC only (Key Vault Secrets User for the app, Secrets Officer for the deployer).

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

// Keep 'Enabled' by default: without the private network (main.bicep vnetEnabled) the Flex
// Consumption app reaches the vault over the public endpoint (protected by Entra ID + RBAC).
// 'Disabled' requires vnetEnabled: infra/app/network.bicep then creates the private endpoint.
@description('Public network access of the vault (Enabled or Disabled; see docs/deploying.md).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Log Analytics workspace receiving the vault audit log.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The firewall follows publicNetworkAccess (default Enabled -> Allow): without VNet integration the Flex Consumption app has no fixed outbound IPs to allow-list. Access requires Entra ID + RBAC (Key Vault Secrets User).
  // checkov:skip=CKV_AZURE_189: Public network access is the publicNetworkAccess parameter (default Enabled, documented in docs/deploying.md): 'Disabled' needs a private endpoint + VNet integration, which this deployment does not create.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

// Who read which secret, and failed access attempts, go to Log Analytics.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
