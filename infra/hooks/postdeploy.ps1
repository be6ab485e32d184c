# azd postdeploy hook (Windows / PowerShell 7): same as postdeploy.sh - creates the Event Grid
# subscription that sends BlobCreated events of the input container to the import_file function.
# By hand: azd env get-values | ForEach-Object { $k, $v = $_ -split '=', 2; Set-Item "env:$k" $v.Trim('"') }
#          ./infra/hooks/postdeploy.ps1
$ErrorActionPreference = 'Stop'

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_EVENTGRID_SYSTEM_TOPIC_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { throw "$name is not set (run through azd)" }
}
$functionName = if ($env:AZURE_IMPORT_FUNCTION_NAME) { $env:AZURE_IMPORT_FUNCTION_NAME } else { 'import_file' }
$inputContainerName = if ($env:AZURE_INPUT_CONTAINER_NAME) { $env:AZURE_INPUT_CONTAINER_NAME } else { 'input' }
$validateContainerName = if ($env:AZURE_VALIDATE_CONTAINER_NAME) { $env:AZURE_VALIDATE_CONTAINER_NAME } else { 'validate' }
$deadLetterContainerName = if ($env:AZURE_DEADLETTER_CONTAINER_NAME) { $env:AZURE_DEADLETTER_CONTAINER_NAME } else { 'deadletter' }
$template = Join-Path $PSScriptRoot '..' 'eventgrid-subscription.bicep'

Write-Host "postdeploy: waiting for the blobs_extension key of $env:AZURE_FUNCTION_APP_NAME"
$blobsExtensionKey = ''
for ($attempt = 1; $attempt -le 20 -and -not $blobsExtensionKey; $attempt++) {
    $blobsExtensionKey = az functionapp keys list --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --query 'systemKeys.blobs_extension' --output tsv 2>$null
    if (-not $blobsExtensionKey) {
        $hostName = az functionapp show --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --query defaultHostName --output tsv 2>$null
        try { Invoke-WebRequest -Uri "https://$hostName/" -TimeoutSec 30 -SkipHttpErrorCheck | Out-Null } catch { }
        Start-Sleep -Seconds 15
    }
}
if (-not $blobsExtensionKey) { throw 'No blobs_extension key: is the import_file function deployed? Re-run this hook afterwards.' }

$paramsFile = New-TemporaryFile
try {
    @{
        '$schema'      = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#'
        contentVersion = '1.0.0.0'
        parameters     = @{
            systemTopicName         = @{ value = $env:AZURE_EVENTGRID_SYSTEM_TOPIC_NAME }
            functionAppName         = @{ value = $env:AZURE_FUNCTION_APP_NAME }
            functionName            = @{ value = $functionName }
            storageAccountName      = @{ value = $env:AZURE_STORAGE_ACCOUNT_NAME }
            inputContainerName      = @{ value = $inputContainerName }
            validateContainerName   = @{ value = $validateContainerName }
            deadLetterContainerName = @{ value = $deadLetterContainerName }
            blobsExtensionKey       = @{ value = $blobsExtensionKey }
        }
    } | ConvertTo-Json -Depth 5 | Set-Content -Path $paramsFile -Encoding utf8
    Remove-Variable blobsExtensionKey

    for ($attempt = 1; $attempt -le 3; $attempt++) {
        Write-Host "postdeploy: deploying the Event Grid subscription (attempt $attempt)"
        az deployment group create --resource-group $env:AZURE_RESOURCE_GROUP --name 'timebridge-eventgrid-subscription' --template-file $template --parameters "@$paramsFile" --output none
        if ($LASTEXITCODE -eq 0) {
            Write-Host "postdeploy: BlobCreated events of '$inputContainerName' now trigger $functionName, and of '$validateContainerName' validate_file"
            exit 0
        }
        Start-Sleep -Seconds 30
    }
    throw 'Could not create the Event Grid subscription; see docs/deploying.md (second step by hand).'
}
finally {
    Remove-Item -Path $paramsFile -Force -ErrorAction SilentlyContinue
}
