// The private-network option (main.bicep vnetEnabled, default false), as the Azure Flex Consumption
// quickstarts offer it: a virtual network with one subnet the function app integrates with (delegated
// to Microsoft.App/environments, as Flex Consumption requires) and one for private endpoints of the
// storage account (blob, queue, table) and the Key Vault, each with its private DNS zone linked to
// the network, so the app reaches them by their usual names over private addresses. Whether the
// public endpoints stay open is decided separately (storagePublicNetworkAccess,
// keyVaultPublicNetworkAccess in main.bicep; docs/deploying.md "Private network").

@description('Azure region (the same as the storage account, the vault and the function app).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Virtual network name.')
param name string

@description('Address space of the virtual network.')
param addressPrefix string = '10.0.0.0/16'

@description('Subnet the function app integrates with (delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.0.1.0/24'

@description('Subnet of the private endpoints.')
param privateEndpointSubnetPrefix string = '10.0.2.0/24'

@description('Storage account reached through private endpoints (blob, queue, table).')
param storageAccountName string

@description('Key Vault reached through a private endpoint.')
param keyVaultName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

// One private endpoint per storage service the app uses, and one for the vault.
var endpoints = [
  {
    name: 'blob'
    target: storage.id
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'queue'
    target: storage.id
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'table'
    target: storage.id
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    name: 'vault'
    target: vault.id
    groupId: 'vault'
    zone: 'privatelink.vaultcore.azure.net'
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for endpoint in endpoints: {
  name: endpoint.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (endpoint, i) in endpoints: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [for endpoint in endpoints: {
  name: 'pe-${endpoint.name}-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: vnet.properties.subnets[1].id
    }
    privateLinkServiceConnections: [
      {
        name: 'pe-${endpoint.name}'
        properties: {
          privateLinkServiceId: endpoint.target
          groupIds: [
            endpoint.groupId
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: endpoint.name
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

output appSubnetId string = vnet.properties.subnets[0].id
output name string = vnet.name
