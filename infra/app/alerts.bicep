// What an administrator is told without reading code: an action group that e-mails them, log alert
// rules on TimeBridge's summary events (customEvents written by the Python worker, see
// shared/platform/telemetry.py and docs/administrator.md "Telemetry, alerts and the dashboard") and on the Functions host's
// own records (requests, traces, exceptions), and an Azure Monitor workbook.
//
// Event names and dimension names in the queries below are the constants of shared/platform/telemetry.py;
// tests/test_infra.py checks that every name used here is one the code emits.

@description('Azure region (alert rules and the workbook; the action group is global).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Application Insights component the rules query and the workbook reads.')
param applicationInsightsName string

@description('Name of the action group.')
param actionGroupName string

@description('Short name of the action group (shown in e-mails; at most 12 characters).')
@maxLength(12)
param actionGroupShortName string = 'TimeBridge'

@description('E-mail address of the administrator who receives the alerts.')
@minLength(3)
param alertEmailAddress string

@description('Hours a deferral may wait before it is alerted.')
@minValue(1)
@maxValue(168)
param deferralAlertHours int = 24

@description('Prefix of the alert rule and workbook names.')
param namePrefix string

@description('Resource id of the Event Grid system topic of the storage account (its dead-lettered events are alerted).')
param eventGridSystemTopicId string

var scope = applicationInsights.id
var actionGroups = [
  actionGroup.id
]

// ---- queries (Kusto over the Application Insights tables) -----------------------------------------

var importProblemsQuery = '''
customEvents
| where name == "TimeBridgeImport"
| extend status = tostring(customDimensions["status"]), lines_rejected = toint(customDimensions["lines_rejected"])
| where status in ("imported-with-errors", "rejected", "rejected-file") or lines_rejected > 0
| project timestamp, file = tostring(customDimensions["file"]), etag = tostring(customDimensions["etag"]), status, lines_rejected
'''

var exportFailedQuery = '''
let failed_runs = customEvents
| where name == "TimeBridgeExport" and tostring(customDimensions["status"]) == "failed"
| project timestamp, source = "summary event", error_type = tostring(customDimensions["error_type"]);
let failed_invocations = requests
| where name == "export_ledger" and success == false
| project timestamp, source = "failed invocation", error_type = resultCode;
union failed_runs, failed_invocations
'''

var exportIntentQuery = '''
customEvents
| where name == "TimeBridgeExport" and tostring(customDimensions["status"]) == "failed"
| extend run_id = tostring(customDimensions["run_id"]), open_intent_since = todatetime(customDimensions["open_intent_since"])
| where isnotempty(run_id) and isnotnull(open_intent_since) and timestamp - open_intent_since > 1h
| summarize last_failure = max(timestamp), open_intent_since = min(open_intent_since) by run_id
'''

// __HOURS__ is replaced by deferralAlertHours (Bicep multi-line strings are not interpolated).
var deferralQueryTemplate = '''
customEvents
| where name == "TimeBridgeDeferral"
| extend file = tostring(customDimensions["file"]), etag = tostring(customDimensions["etag"]), target = tostring(customDimensions["target"])
| extend status = tostring(customDimensions["status"]), deferred_since = todatetime(customDimensions["deferred_since"]), records_pending = toint(customDimensions["records_pending"])
| summarize arg_max(timestamp, status, deferred_since, records_pending) by file, etag, target
| where status != "completed" and deferred_since < now() - __HOURS__h
'''

var startupQuery = '''
let refused = traces
| where message startswith "TimeBridge refuses to run until the configuration is fixed"
| project timestamp, problem = message;
let host_failed = traces
| where severityLevel >= 3 and (message has "A host error has occurred during startup operation" or message has "Worker failed to index functions")
| project timestamp, problem = message;
let host_exceptions = exceptions
| where tostring(customDimensions["FormattedMessage"]) has "A host error has occurred during startup operation"
| project timestamp, problem = tostring(customDimensions["FormattedMessage"]);
union refused, host_failed, host_exceptions
'''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: [
      {
        name: 'administrator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

resource importProblems 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-import-rejected'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'TimeBridge: an imported file had rejected lines, or the whole file was rejected'
    description: 'A file in the input container was not imported completely. Open error/<file>/<etag>/errors.txt (or reason.txt for a rejected file): it names each rejected line, the field, the reason and what to do. Correct the rejected-lines file beside it and upload it to the input container again. The alert names the file; the receipt is archive/<file>/<etag>/receipt.json.'
    severity: 2
    enabled: true
    scopes: [
      scope
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: importProblemsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'file'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource exportFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-export-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'TimeBridge: an export run failed'
    description: 'The export timer (export_ledger) failed. Nothing beyond a file already written was marked transferred, and the next run (EXPORT_SCHEDULE) completes an unfinished run first. Look at function app > Functions > export_ledger > Invocations for the error; a SmartTID outage or a refused setting is the usual cause. If it keeps failing, see docs/export.md "The exactly-once protocol".'
    severity: 1
    enabled: true
    scopes: [
      scope
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: exportFailedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource exportIntent 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-export-intent-open'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'TimeBridge: an export run has been unfinished for more than an hour'
    description: 'An export run recorded its intent more than an hour ago and every run since has failed to complete it, so new ledger entries are not being exported. The alert names the run id; its staged file is output/_state/runs/<run id>/. Fix the cause shown under export_ledger > Invocations (SmartTID unreachable, storage, a refused setting); the next run then completes it. Do not delete the _state folder (docs/export.md "The exactly-once protocol").'
    severity: 1
    enabled: true
    scopes: [
      scope
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: exportIntentQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'run_id'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource deferralTooOld 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-deferral-old'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'TimeBridge: records of a file have waited longer than ${deferralAlertHours} hours'
    description: 'Records of an imported file were deferred (for example because the daily call budget of the target system was used up) and are still waiting after ${deferralAlertHours} hours (parameter deferralAlertHours). The alert names the file; its receipt is archive/<file>/<etag>/receipt.json. Check the call budget of the target system and whether more files than usual were dropped.'
    severity: 2
    enabled: true
    scopes: [
      scope
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(deferralQueryTemplate, '__HOURS__', string(deferralAlertHours))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'file'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource startupFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-startup-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'TimeBridge: the function app refused its configuration or failed to start'
    description: 'The function app refused its settings ("TimeBridge refuses to run until the configuration is fixed: ..." names the app setting, its value and what to set instead) or the Functions host could not start. Until this is fixed no file is imported and nothing is exported. Fix the parameter in infra/main.parameters.json and run azd provision (docs/deploying.md "When something fails").'
    severity: 1
    enabled: true
    scopes: [
      scope
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: startupQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

// An event Event Grid could not deliver (after 24 hours of retries) is a file that was not imported:
// it stays in the input container (the safety-net rule deletes it after inputRetentionDays) and the
// event is written to the dead-letter container. A metric alert on the system topic says so at once.
resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-event-dead-lettered'
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid could not deliver a blob event to the function app and wrote it to the dead-letter container: a file in the input (or validate) container was not processed. Look at the JSON in the deadletter container for the file name and the reason, fix the cause (a stopped or failing function app) and upload the file again (docs/deploying.md "When something fails").'
    severity: 1
    enabled: true
    scopes: [
      eventGridSystemTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// ---- the workbook ---------------------------------------------------------------------------------

var filesPerDayQuery = '''
customEvents
| where name == "TimeBridgeImport"
| extend status = tostring(customDimensions["status"])
| summarize files = count() by bin(timestamp, 1d), status
| order by timestamp asc
'''

var rejectedByReasonQuery = '''
customEvents
| where name == "TimeBridgeImport"
| extend reasons = parse_json(tostring(customDimensions["rejected_by_reason"]))
| mv-expand bagexpansion=array reasons
| where isnotempty(reasons)
| extend reason = tostring(reasons[0]), lines = toint(reasons[1])
| summarize lines = sum(lines) by reason
| order by lines desc
'''

var exportsPerDayQuery = '''
customEvents
| where name == "TimeBridgeExport"
| extend status = tostring(customDimensions["status"]), file = tostring(customDimensions["file"])
| summarize files = countif(isnotempty(file)), time_ledger_entries = sum(toint(customDimensions["time_ledger_entries"])), job_ledger_entries = sum(toint(customDimensions["job_ledger_entries"])), failed_runs = countif(status == "failed") by bin(timestamp, 1d)
| order by timestamp asc
'''

var apiCallsQuery = '''
customEvents
| where name in ("TimeBridgeImport", "TimeBridgeExport")
| extend target = tostring(customDimensions["target"]), api_calls = toint(customDimensions["api_calls"])
| summarize api_calls = sum(api_calls) by bin(timestamp, 1d), target
| order by timestamp asc
'''

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## TimeBridge\nImports, rejected lines, exports and API calls, from the summary events TimeBridge logs (customEvents TimeBridgeImport, TimeBridgeExport, TimeBridgeDeferral). Receipts and error reports are in the archive and error containers.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'time-range'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 2592000000
            }
            typeSettings: {
              selectableValues: [
                {
                  durationMs: 86400000
                }
                {
                  durationMs: 604800000
                }
                {
                  durationMs: 2592000000
                }
              ]
            }
          }
        ]
      }
    }
    {
      type: 3
      name: 'files-imported-per-day'
      content: {
        version: 'KqlItem/1.0'
        title: 'Files imported per day, by outcome'
        query: filesPerDayQuery
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
        visualization: 'barchart'
        size: 0
      }
    }
    {
      type: 3
      name: 'rejected-lines-by-reason'
      content: {
        version: 'KqlItem/1.0'
        title: 'Rejected lines by reason (record type and field)'
        query: rejectedByReasonQuery
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
        size: 0
      }
    }
    {
      type: 3
      name: 'exports-per-day'
      content: {
        version: 'KqlItem/1.0'
        title: 'Export files and ledger entries per day'
        query: exportsPerDayQuery
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
        size: 0
      }
    }
    {
      type: 3
      name: 'api-calls-per-target'
      content: {
        version: 'KqlItem/1.0'
        title: 'API calls per day, per target system'
        query: apiCallsQuery
        queryType: 0
        resourceType: 'microsoft.insights/components'
        timeContextFromParameter: 'TimeRange'
        visualization: 'barchart'
        size: 0
      }
    }
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; deterministic, so a re-deployment updates the same workbook.
  name: guid(resourceGroup().id, namePrefix, 'timebridge-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'TimeBridge: imports, exports and API calls'
    category: 'workbook'
    sourceId: applicationInsights.id
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

output actionGroupId string = actionGroup.id
output workbookId string = workbook.id
output alertRuleNames array = [
  importProblems.name
  exportFailed.name
  exportIntent.name
  deferralTooOld.name
  startupFailed.name
  deadLettered.name
]
