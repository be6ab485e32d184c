"""Offline checks of the Bicep templates in infra/, over pycep-parser dictionaries.

No Azure, no network, no Bicep compiler: these tests pin down the security- and wiring-relevant
facts of the templates (the ones a typo would silently break) and keep the app settings in step
with ``shared.platform.config.all_setting_names()``. ``scripts/check_infra.sh`` runs them together with the
tree-sitter syntax check and checkov.

pycep note: in its dictionaries a Bicep identifier (``inputContainerName``) and a string literal
(``'input'``) are both plain ``str``; helpers below resolve parameter/variable names explicitly.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.platform import telemetry
from shared.platform.config import Settings
from shared.targets.registry import all_setting_names
from shared.targets.smarttid.settings import SmartTidSettings
from shared.targets.tictac.settings import TicTacSettings

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION = INFRA / "app" / "function.bicep"
STORAGE = INFRA / "app" / "storage.bicep"
KEYVAULT = INFRA / "app" / "keyvault.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
MONITORING = INFRA / "app" / "monitoring.bicep"
EVENTGRID = INFRA / "app" / "eventgrid.bicep"
ALERTS = INFRA / "app" / "alerts.bicep"
NETWORK = INFRA / "app" / "network.bicep"
SUBSCRIPTION = INFRA / "eventgrid-subscription.bicep"
HOOK = INFRA / "hooks" / "postdeploy.sh"

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Blob container names: 3-63 chars, lowercase letters, digits and single dashes, starting and
# ending with a letter or digit.
CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
# A realistic resource token: uniqueString() returns 13 lowercase base-32 characters.
SAMPLE_TOKEN = "abcdefghijk23"

# Settings the code reads only when running locally (Azurite). They must NOT be set in Azure.
LOCAL_ONLY_SETTINGS = {
    "IntegrationStorage",  # connection string (with the Azurite account key) for local runs only
}

# App settings that are read by the Functions host, the storage extension, the Azure SDK
# credential or Application Insights -- not by shared/platform/config.py.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__accountName",  # host storage, identity based
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",  # telemetry destination
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # Entra ID ingestion with the managed identity
    "IntegrationStorage__queueServiceUri",  # blob trigger extension (poison queue)
    "IntegrationStorage__credential",  # identity-based "IntegrationStorage" connection
    "IntegrationStorage__clientId",
    # The Python worker's Azure Monitor distro (shared/platform/telemetry.py): the summary events only.
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
}

# Never set on a Flex Consumption app ("Flex Consumption plan deprecations"), or key-bearing.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}

ROLE = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


# ---- helpers ------------------------------------------------------------------------------------


@cache
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def resources(path: Path, type_: str | None = None) -> dict[str, dict[str, Any]]:
    found = parse(path).get("resources", {})
    return {name: r for name, r in found.items() if type_ is None or r["type"] == type_}


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource body; conditional resources (``= if (...) {``) nest it one level deeper."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def only(path: Path, type_: str) -> dict[str, Any]:
    found = resources(path, type_)
    assert len(found) == 1, f"expected exactly one {type_} in {path.name}, found {sorted(found)}"
    return body(next(iter(found.values())))


def param_default(path: Path, name: str) -> Any:
    params = parse(path)["parameters"]
    assert name in params, f"{path.name} has no parameter {name}"
    return params[name].get("default")


def decorators(path: Path, name: str) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in parse(path)["parameters"][name]["decorators"]}


def render(template: str, path: Path, token: str = SAMPLE_TOKEN) -> str:
    """Evaluate the ``${var}`` / ``${take(var, n)}`` interpolations used in resource names."""
    variables = {name: v["value"] for name, v in parse(path).get("variables", {}).items()}

    def value(name: str) -> str:
        if name == "resourceToken":
            return token
        if name in variables and isinstance(variables[name], str):
            return render(variables[name], path, token)
        default = parse(path)["parameters"].get(name, {}).get("default")
        assert isinstance(default, str), f"cannot render {name!r} in {path.name}"
        return default

    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        take = re.fullmatch(r"take\((\w+),\s*(\d+)\)", expr)
        if take:
            return value(take.group(1))[: int(take.group(2))]
        assert re.fullmatch(r"\w+", expr), f"unsupported interpolation {expr!r}"
        return value(expr)

    return re.sub(r"\$\{([^}]*)\}", substitute, template)


def app_settings() -> dict[str, Any]:
    site = only(FUNCTION, "Microsoft.Web/sites")
    entries = site["properties"]["siteConfig"]["appSettings"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "duplicate app setting names"
    return {entry["name"]: entry["value"] for entry in entries}


def role_guid(role_definition_var: str) -> str:
    function = parse(RBAC)["variables"][role_definition_var]["value"]["function"]
    assert function["type"] == "subscription_resource_id"
    assert function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    return function["parameters"]["resource_name_1"]


def module_file(module: dict[str, Any]) -> Path:
    return (MAIN.parent / module["detail"]["path"]).resolve()


# ---- every file parses --------------------------------------------------------------------------


def test_infra_has_the_expected_bicep_files() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {
        "main.bicep",
        "eventgrid-subscription.bicep",
        "app/monitoring.bicep",
        "app/storage.bicep",
        "app/keyvault.bicep",
        "app/function.bicep",
        "app/rbac.bicep",
        "app/eventgrid.bicep",
        "app/alerts.bicep",
        "app/network.bicep",
    } <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses_and_declares_something(path: Path) -> None:
    template = parse(path)
    assert template.get("resources") or template.get("modules"), f"{path.name} declares nothing"


def test_main_and_second_step_are_resource_group_scoped() -> None:
    for path in (MAIN, SUBSCRIPTION):
        assert parse(path)["globals"]["scope"]["value"] == "resourceGroup", path.name


def test_module_wiring_matches_module_parameters() -> None:
    """Every module call passes only declared parameters and all required ones (as az bicep would)."""
    modules = parse(MAIN)["modules"]
    assert {module_file(m) for m in modules.values()} == {
        MONITORING.resolve(),
        STORAGE.resolve(),
        KEYVAULT.resolve(),
        EVENTGRID.resolve(),
        RBAC.resolve(),
        FUNCTION.resolve(),
        ALERTS.resolve(),
        NETWORK.resolve(),
    }
    for name, module in modules.items():
        target = parse(module_file(module))["parameters"]
        passed = set(body(module)["params"])  # a conditional module (= if (...)) nests its body
        assert passed <= set(target), f"module {name} passes unknown params {passed - set(target)}"
        required = {p for p, spec in target.items() if "default" not in spec}
        assert required <= passed, f"module {name} misses required params {required - passed}"


def test_azd_parameters_file_matches_main() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert {name: v["value"] for name, v in values.items()} == {
        "environmentName": "${AZURE_ENV_NAME}",
        "location": "${AZURE_LOCATION}",
        "principalId": "${AZURE_PRINCIPAL_ID}",
        "deployerDataAccess": "${TIMEBRIDGE_DEPLOYER_DATA_ACCESS=false}",
        "alertEmailAddress": "${TIMEBRIDGE_ALERT_EMAIL}",
        # the target and the Tic-Tac export's text settings, from `azd env set` (so azd provision keeps them)
        "targetSystem": "${TIMEBRIDGE_TARGET_SYSTEM=smarttid}",
        "tictacAbsenceProjects": "${TIMEBRIDGE_TICTAC_ABSENCE_PROJECTS=}",
        "tictacWorktypeMap": "${TIMEBRIDGE_TICTAC_WORKTYPE_MAP=WORKHOURS=NORMAL,OVERTIME=OVERTIME1}",
        "exportCorrectionDate": "${TIMEBRIDGE_EXPORT_CORRECTION_DATE=original}",
    }
    for name, value in values.items():  # each default is main.bicep's own
        if "=" in value["value"]:
            default = param_default(MAIN, name)
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            assert value["value"][2:-1].split("=", 1)[1] == shown, name
    params = parse(MAIN)["parameters"]
    assert set(values) <= set(params)
    assert {p for p, spec in params.items() if "default" not in spec} <= set(values)
    assert param_default(MAIN, "principalId") == ""


# ---- storage ------------------------------------------------------------------------------------

CONTAINER_PARAMS = {
    "inputContainerName": "INPUT_CONTAINER",
    "outputContainerName": "OUTPUT_CONTAINER",
    "errorContainerName": "ERROR_CONTAINER",
    "archiveContainerName": "ARCHIVE_CONTAINER",
    "validateContainerName": "VALIDATE_CONTAINER",
    "exportStateContainerName": "EXPORT_STATE_CONTAINER",
}


@pytest.mark.parametrize("param", [*CONTAINER_PARAMS, "deadLetterContainerName"])
def test_container_name_parameters_are_valid(param: str) -> None:
    default = param_default(MAIN, param)
    assert CONTAINER_NAME.match(default), default
    assert decorators(MAIN, param)["min_length"] == 3
    assert decorators(MAIN, param)["max_length"] == 63


def test_container_defaults_match_the_code() -> None:
    aliases = {f.alias: f.default for f in Settings.model_fields.values()}
    for param, setting in CONTAINER_PARAMS.items():
        assert param_default(MAIN, param) == aliases[setting]
    assert param_default(MAIN, "exportLedgerTableName") == aliases["EXPORT_LEDGER_TABLE"]
    assert param_default(MAIN, "xrefTableName") == aliases["XREF_TABLE"]
    assert param_default(MAIN, "budgetTableName") == aliases["BUDGET_TABLE"]


def test_deployment_package_container_name_is_valid() -> None:
    name = render(parse(MAIN)["variables"]["deploymentContainerName"]["value"], MAIN)
    assert name.startswith("app-package-")
    assert CONTAINER_NAME.match(name), name


def test_storage_declares_every_container_private_and_the_ledger_table() -> None:
    containers = resources(STORAGE, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert {body(c)["name"] for c in containers.values()} == {
        *CONTAINER_PARAMS,
        "deadLetterContainerName",
        "deploymentContainerName",
        "hostContainerName",  # the loop over hostContainerNames
    }
    assert containers["hostContainers"]["config"]["loop_type"]["detail"] == {
        "item_name": "hostContainerName",
        "array_name": "hostContainerNames",
    }
    for container in containers.values():
        assert body(container)["properties"]["publicAccess"] == "None"
    tables = resources(STORAGE, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert [body(t)["name"] for t in tables.values()] == ["exportLedgerTableName", "xrefTableName", "budgetTableName"]
    assert param_default(MAIN, "exportLedgerTableName") == "exportledger"


def test_storage_account_is_locked_down() -> None:
    account = only(STORAGE, "Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert account["kind"] == "StorageV2"


def test_blob_soft_delete_and_versioning_protect_the_records() -> None:
    props = only(STORAGE, "Microsoft.Storage/storageAccounts/blobServices")["properties"]
    assert props["isVersioningEnabled"] is True
    assert props["deleteRetentionPolicy"]["enabled"] is True
    assert props["containerDeleteRetentionPolicy"]["enabled"] is True
    assert param_default(STORAGE, "deleteRetentionDays") >= 7


RETENTION_PARAMS = {
    # main.bicep parameter: (storage.bicep parameter, default days)
    "archiveRetentionDays": ("archiveRetentionDays", 180),
    "errorRetentionDays": ("errorRetentionDays", 90),
    "versionRetentionDays": ("versionRetentionDays", 30),
    "deleteRetentionDays": ("deleteRetentionDays", 30),
    "inputRetentionDays": ("inputRetentionDays", 30),
    "deadLetterRetentionDays": ("deadLetterRetentionDays", 30),
}


def lifecycle_rules() -> dict[str, dict[str, Any]]:
    policy = only(STORAGE, "Microsoft.Storage/storageAccounts/managementPolicies")
    assert policy["name"] == "default" and policy["parent"] == "storage"
    rules = policy["properties"]["policy"]["rules"]
    assert all(rule["enabled"] is True and rule["type"] == "Lifecycle" for rule in rules)
    return {rule["name"]: rule["definition"] for rule in rules}


def test_retention_is_parameterised_and_reaches_the_storage_module() -> None:
    storage_call = parse(MAIN)["modules"]["storage"]["config"]["params"]
    for main_param, (storage_param, days) in RETENTION_PARAMS.items():
        assert param_default(MAIN, main_param) == days, main_param
        assert param_default(STORAGE, storage_param) == days, storage_param
        assert decorators(MAIN, main_param)["min_value"] >= 1, main_param
        assert storage_call[storage_param] == main_param, storage_param
    assert param_default(MAIN, "logRetentionDays") == param_default(MONITORING, "retentionInDays") == 30
    assert parse(MAIN)["modules"]["monitoring"]["config"]["params"]["retentionInDays"] == "logRetentionDays"


def test_lifecycle_deletes_archive_and_error_blobs_after_their_retention() -> None:
    rules = lifecycle_rules()
    for rule, prefixes, days in (
        ("archive-retention", ["${archiveContainerName}/", "${exportStateContainerName}/receipts/"],
         "archiveRetentionDays"),
        ("error-retention", ["${errorContainerName}/", "${validateContainerName}/"], "errorRetentionDays"),
    ):
        definition = rules[rule]
        assert definition["filters"]["prefixMatch"] == prefixes, rule
        assert definition["filters"]["blobTypes"] == ["blockBlob"], rule
        assert definition["actions"] == {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}}, rule
    # The storage module gets the container names from main.bicep, so with its defaults the rules
    # match "archive/..." and "error/..." and nothing else.
    storage_call = parse(MAIN)["modules"]["storage"]["config"]["params"]
    assert storage_call["archiveContainerName"] == "archiveContainerName"
    assert storage_call["errorContainerName"] == "errorContainerName"
    assert param_default(MAIN, "archiveContainerName") == "archive"
    assert param_default(MAIN, "errorContainerName") == "error"


def test_lifecycle_removes_old_versions_and_snapshots_everywhere() -> None:
    definition = lifecycle_rules()["previous-versions-and-snapshots"]
    assert "prefixMatch" not in definition["filters"]  # every container
    assert definition["filters"]["blobTypes"] == ["blockBlob"]  # all TimeBridge and the host write
    assert definition["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": "versionRetentionDays"}},
        "snapshot": {"delete": {"daysAfterCreationGreaterThan": "versionRetentionDays"}},
    }


def test_lifecycle_never_touches_the_output_container_and_the_input_only_as_a_safety_net() -> None:
    """The output container belongs to the ERP; the input container empties itself, but a file left
    there (refused configuration, dead-lettered event) must not keep its CPR numbers for ever."""
    rules = lifecycle_rules()
    for name, definition in rules.items():
        for prefix in definition["filters"].get("prefixMatch", []):
            assert not prefix.startswith("${outputContainerName}"), name
            assert not prefix.startswith("${inputContainerName}") or name == "input-safety-net", name
    assert set(rules) == {"archive-retention", "error-retention", "input-safety-net", "deadletter-retention",
                          "previous-versions-and-snapshots"}
    for name, prefix, days in (("input-safety-net", "${inputContainerName}/", "inputRetentionDays"),
                               ("deadletter-retention", "${deadLetterContainerName}/", "deadLetterRetentionDays")):
        assert rules[name]["filters"] == {"blobTypes": ["blockBlob"], "prefixMatch": [prefix]}, name
        assert rules[name]["actions"] == {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}}, name
    # longer than Event Grid's 24 hours of retries and a week's absence of the administrator
    assert decorators(MAIN, "inputRetentionDays")["min_value"] >= 7
    assert decorators(STORAGE, "inputRetentionDays")["min_value"] >= 7


def test_data_residency_is_a_choice_of_replication() -> None:
    allowed = set(decorators(MAIN, "storageSkuName")["allowed"])
    assert {"Standard_LRS", "Standard_ZRS", "Standard_GRS"} <= allowed
    assert allowed == set(decorators(STORAGE, "skuName")["allowed"])
    assert parse(MAIN)["modules"]["storage"]["config"]["params"]["skuName"] == "storageSkuName"
    readme = (ROOT / "docs" / "administrator.md").read_text()
    assert "`storageSkuName`" in readme and "paired region" in readme and "Standard_ZRS" in readme


def test_dead_lettered_events_are_alerted() -> None:
    alert = only(ALERTS, "Microsoft.Insights/metricAlerts")
    props = alert["properties"]
    assert props["scopes"] == ["eventGridSystemTopicId"] and props["enabled"] is True
    [criterion] = props["criteria"]["allOf"]
    assert (criterion["metricNamespace"], criterion["metricName"]) == ("Microsoft.EventGrid/systemTopics",
                                                                       "DeadLetteredCount")
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 0, "Total")
    assert len(props["actions"]) == 1 and len(props["description"]) > 80
    wired = parse(MAIN)["modules"]["alerts"]["config"]["params"]["eventGridSystemTopicId"]
    assert "eventGrid" in json.dumps(wired)


def test_soft_delete_uses_the_delete_retention_parameter() -> None:
    props = only(STORAGE, "Microsoft.Storage/storageAccounts/blobServices")["properties"]
    assert props["deleteRetentionPolicy"] == {"enabled": True, "days": "deleteRetentionDays"}
    assert props["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "deleteRetentionDays"}


@pytest.mark.parametrize("service", ["blobService", "queueService", "tableService"])
def test_storage_services_send_read_write_delete_logs(service: str) -> None:
    settings = [body(d) for d in resources(STORAGE, "Microsoft.Insights/diagnosticSettings").values()]
    matching = [d for d in settings if d["scope"] == service]
    assert len(matching) == 1, service
    props = matching[0]["properties"]
    assert props["workspaceId"] == "logAnalyticsWorkspaceId"
    assert {(log["category"], log["enabled"]) for log in props["logs"]} == {
        ("StorageRead", True),
        ("StorageWrite", True),
        ("StorageDelete", True),
    }


def test_retention_parameters_are_documented() -> None:
    readme = (ROOT / "docs" / "administrator.md").read_text()
    deploying = (ROOT / "docs" / "deploying.md").read_text()
    for param in (*RETENTION_PARAMS, "logRetentionDays"):
        assert f"`{param}`" in readme, f"README does not name {param}"
        assert f"`{param}`" in deploying, f"docs/deploying.md does not name {param}"


def test_resource_names_fit_azure_naming_rules() -> None:
    params = {n: body(m)["params"] for n, m in parse(MAIN)["modules"].items()}
    storage_name = render(params["storage"]["name"], MAIN)
    vault_name = render(params["keyVault"]["name"], MAIN)
    app_name = render(parse(MAIN)["variables"]["functionAppName"]["value"], MAIN)
    assert re.fullmatch(r"[a-z0-9]{3,24}", storage_name), storage_name
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", vault_name), vault_name
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]", app_name), app_name


# ---- key vault ----------------------------------------------------------------------------------


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    props = only(KEYVAULT, "Microsoft.KeyVault/vaults")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["softDeleteRetentionInDays"] == 90
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props
    assert props["publicNetworkAccess"] == "publicNetworkAccess"
    assert decorators(KEYVAULT, "publicNetworkAccess")["allowed"] == ["Enabled", "Disabled"]


def test_no_secret_values_in_templates() -> None:
    for path in BICEP_FILES:
        assert not resources(path, "Microsoft.KeyVault/vaults/secrets"), path.name
        text = path.read_text()
        assert "listKeys(" not in text, path.name
        assert "AccountKey" not in text, path.name
    for name, spec in parse(SUBSCRIPTION)["parameters"].items():
        if "secure" in {d["type"] for d in spec["decorators"]}:
            assert spec.get("default") in (None, ""), f"@secure() param {name} has a default"


# ---- monitoring ---------------------------------------------------------------------------------


def test_application_insights_has_local_auth_disabled_and_a_workspace() -> None:
    props = only(MONITORING, "Microsoft.Insights/components")["properties"]
    assert props["DisableLocalAuth"] is True
    assert props["WorkspaceResourceId"]["operator"]["operands"]["operand_1"] == "logAnalytics"


# ---- telemetry, alerts and the workbook (infra/app/alerts.bicep, shared/platform/telemetry.py) ------------

#: The dimensions each event carries (shared/platform/telemetry.py); a query may name only these.
EVENT_DIMENSIONS = {
    telemetry.IMPORT_EVENT: set(telemetry.IMPORT_DIMENSIONS),
    telemetry.EXPORT_EVENT: set(telemetry.EXPORT_DIMENSIONS),
    telemetry.DEFERRAL_EVENT: set(telemetry.DEFERRAL_DIMENSIONS),
}
EVENT_STATUSES = {
    telemetry.IMPORT_EVENT: set(telemetry.IMPORT_STATUSES),
    telemetry.EXPORT_EVENT: set(telemetry.EXPORT_STATUSES),
    telemetry.DEFERRAL_EVENT: set(telemetry.DEFERRAL_STATUSES),
}
ALERT_RULES = {
    "importProblems", "exportFailed", "exportIntent", "deferralTooOld", "startupFailed",
}


def alert_variables() -> dict[str, Any]:
    return {name: v["value"] for name, v in parse(ALERTS).get("variables", {}).items()}


def rule(name: str) -> dict[str, Any]:
    return body(resources(ALERTS, "Microsoft.Insights/scheduledQueryRules")[name])


def rule_query(name: str) -> str:
    """The rule's Kusto text (a variable, or a ``replace()`` of one)."""
    [criterion] = rule(name)["properties"]["criteria"]["allOf"]
    query = criterion["query"]
    if isinstance(query, dict):
        query = query["function"]["parameters"]["original_string"]
    text = alert_variables()[query]
    assert isinstance(text, str) and text.strip(), name
    return text


def event_names(query: str) -> set[str]:
    names = set(re.findall(r'\bname == "(\w+)"', query))
    for listed in re.findall(r"\bname in \(([^)]*)\)", query):
        names |= set(re.findall(r'"(\w+)"', listed))
    return names


def dimension_names(query: str) -> set[str]:
    return set(re.findall(r'customDimensions\["([\w.]+)"\]', query))


def assert_query_matches_the_code(query: str, label: str) -> set[str]:
    """Every customEvents name and dimension the query uses is one shared/platform/telemetry.py emits."""
    events = event_names(query) - {"export_ledger"}  # requests.name: the timer function's name
    assert events <= set(telemetry.EVENTS), f"{label}: unknown event names {events - set(telemetry.EVENTS)}"
    allowed = set().union(*(EVENT_DIMENSIONS[e] for e in events)) if events else set()
    used = dimension_names(query) - {"FormattedMessage"}  # the host's own field on exceptions
    assert used <= allowed, f"{label}: dimensions the events do not carry: {used - allowed}"
    statuses = set(re.findall(r'\bstatus (?:==|!=) "([\w-]+)"', query))
    for listed in re.findall(r"\bstatus in \(([^)]*)\)", query):
        statuses |= set(re.findall(r'"([\w-]+)"', listed))
    known = set().union(*(EVENT_STATUSES[e] for e in events)) if events else set()
    assert statuses <= known, f"{label}: statuses the code never writes: {statuses - known}"
    return events


def test_action_group_mails_the_administrator_from_a_required_parameter() -> None:
    group = only(ALERTS, "Microsoft.Insights/actionGroups")
    assert group["location"] == "Global"
    props = group["properties"]
    assert props["enabled"] is True
    assert len(param_default(ALERTS, "actionGroupShortName")) <= 12
    [receiver] = props["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmailAddress"
    assert receiver["useCommonAlertSchema"] is True
    assert not props.get("smsReceivers") and not props.get("webhookReceivers")
    # required in main.bicep (no default), filled by azd from TIMEBRIDGE_ALERT_EMAIL, passed through
    assert parse(MAIN)["parameters"]["alertEmailAddress"].get("default") is None
    assert decorators(MAIN, "alertEmailAddress")["min_length"] == 3
    assert parse(MAIN)["modules"]["alerts"]["config"]["params"]["alertEmailAddress"] == "alertEmailAddress"


def test_every_alert_rule_queries_application_insights_and_notifies_the_action_group() -> None:
    rules = resources(ALERTS, "Microsoft.Insights/scheduledQueryRules")
    assert set(rules) == ALERT_RULES
    variables = parse(ALERTS)["variables"]
    accessor = {"type": "property_accessor", "operands": {"operand_1": "actionGroup", "operand_2": "id"}}
    assert variables["actionGroups"]["value"] == [{"operator": accessor}]
    assert variables["scope"]["value"]["operator"]["operands"] == {"operand_1": "applicationInsights", "operand_2": "id"}
    for name in rules:
        config = rule(name)
        props = config["properties"]
        assert config["kind"] == "LogAlert", name
        assert props["enabled"] is True, name
        assert props["scopes"] == ["scope"], name
        assert props["actions"]["actionGroups"] == "actionGroups", name
        assert props["severity"] in (1, 2), name
        assert props["autoMitigate"] is True, name
        assert props["displayName"].startswith("TimeBridge: "), name
        assert len(props["description"]) > 80, name  # what happened and what to do, for the e-mail
        [criterion] = props["criteria"]["allOf"]
        assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "GreaterThan", 0)
        assert criterion["failingPeriods"] == {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1}
        for dimension in criterion.get("dimensions", []):
            assert re.search(rf"\b{dimension['name']}\b", rule_query(name)), f"{name} splits by a column it does not return"
        assert_query_matches_the_code(rule_query(name), name)


def test_import_rule_fires_on_rejected_lines_and_rejected_files() -> None:
    query = rule_query("importProblems")
    assert event_names(query) == {telemetry.IMPORT_EVENT}
    assert {telemetry.STATUS, telemetry.LINES_REJECTED, telemetry.FILE, telemetry.ETAG} <= dimension_names(query)
    for status in ("imported-with-errors", "rejected", "rejected-file"):
        assert f'"{status}"' in query
    assert '"imported"' not in query.replace('"imported-with-errors"', "")
    props = rule("importProblems")["properties"]
    assert (props["evaluationFrequency"], props["windowSize"]) == ("PT5M", "PT5M")
    assert props["criteria"]["allOf"][0]["dimensions"][0]["name"] == "file"
    assert "errors.txt" in props["description"] and "upload" in props["description"]


def test_export_rules_fire_on_a_failed_run_and_an_intent_open_over_an_hour() -> None:
    from tests.functions_host import registered

    failed = rule_query("exportFailed")
    assert event_names(failed) == {telemetry.EXPORT_EVENT, "export_ledger"}
    assert f'"{telemetry.EXPORT_FAILED}"' in failed
    registered("export_ledger")  # the host's requests carry the function's name
    assert "requests" in failed and "success == false" in failed
    intent = rule_query("exportIntent")
    assert event_names(intent) == {telemetry.EXPORT_EVENT}
    assert {telemetry.OPEN_INTENT_SINCE, telemetry.RUN_ID} <= dimension_names(intent)
    assert "> 1h" in intent
    for name in ("exportFailed", "exportIntent"):
        assert rule(name)["properties"]["evaluationFrequency"] == "PT15M"


def test_deferral_rule_uses_the_configurable_hours() -> None:
    [criterion] = rule("deferralTooOld")["properties"]["criteria"]["allOf"]
    replace = criterion["query"]["function"]
    assert replace["type"] == "replace"
    assert replace["parameters"]["old_string"] == "__HOURS__"
    assert replace["parameters"]["new_string"]["function"]["parameters"]["value_to_convert"] == "deferralAlertHours"
    query = rule_query("deferralTooOld")
    assert "now() - __HOURS__h" in query
    assert event_names(query) == {telemetry.DEFERRAL_EVENT}
    assert {telemetry.DEFERRED_SINCE, telemetry.STATUS, telemetry.FILE} <= dimension_names(query)
    assert param_default(MAIN, "deferralAlertHours") == param_default(ALERTS, "deferralAlertHours") == 24
    assert parse(MAIN)["modules"]["alerts"]["config"]["params"]["deferralAlertHours"] == "deferralAlertHours"


def test_startup_rule_matches_the_refusal_the_app_logs_and_host_startup_errors() -> None:
    query = rule_query("startupFailed")
    assert f'startswith "{telemetry.STARTUP_REFUSAL}"' in query
    assert "A host error has occurred during startup operation" in query
    assert "traces" in query and "exceptions" in query


def workbook_items() -> list[dict[str, Any]]:
    content = alert_variables()["workbookContent"]
    assert content["version"] == "Notebook/1.0"
    return content["items"]


def test_workbook_shows_the_four_tiles_from_the_summary_events() -> None:
    workbook = only(ALERTS, "Microsoft.Insights/workbooks")
    assert workbook["kind"] == "shared"
    props = workbook["properties"]
    assert props["category"] == "workbook" and props["version"] == "Notebook/1.0"
    assert props["serializedData"]["function"]["parameters"]["value_to_convert"] == "workbookContent"
    assert props["sourceId"]["operator"]["operands"] == {"operand_1": "applicationInsights", "operand_2": "id"}
    assert workbook["name"]["function"]["type"] == "guid"
    tiles = {item["name"]: item["content"] for item in workbook_items() if item["type"] == 3}
    assert set(tiles) == {"files-imported-per-day", "rejected-lines-by-reason", "exports-per-day", "api-calls-per-target"}
    queries = {name: alert_variables()[tile["query"]] for name, tile in tiles.items()}
    for name, query in queries.items():
        assert tiles[name]["timeContextFromParameter"] == "TimeRange", name
        assert assert_query_matches_the_code(query, name), f"{name} reads no TimeBridge event"
    assert "bin(timestamp, 1d), status" in queries["files-imported-per-day"]
    assert f'customDimensions["{telemetry.REJECTED_BY_REASON}"]' in queries["rejected-lines-by-reason"]
    assert "by reason" in queries["rejected-lines-by-reason"]
    for dimension in (telemetry.FILE, telemetry.TIME_ENTRIES, telemetry.JOB_ENTRIES):
        assert f'customDimensions["{dimension}"]' in queries["exports-per-day"]
    assert event_names(queries["api-calls-per-target"]) == {telemetry.IMPORT_EVENT, telemetry.EXPORT_EVENT}
    assert "by bin(timestamp, 1d), target" in queries["api-calls-per-target"]


def test_worker_exports_exactly_the_event_logger_with_the_pinned_distro() -> None:
    settings = app_settings()
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert settings["PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"] == telemetry.EVENT_LOGGER
    assert settings["OTEL_TRACES_EXPORTER"] == settings["OTEL_METRICS_EXPORTER"] == "none"
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^azure-monitor-opentelemetry==\d+\.\d+\.\d+$", requirements, re.M)
    host = json.loads((ROOT / "host.json").read_text())
    assert "telemetryMode" not in host  # the host keeps its Application Insights mode (README)


# ---- role assignments ---------------------------------------------------------------------------

EXPECTED_ASSIGNMENTS = {
    # (principal param, scope symbol, role, principalType, conditional)
    ("appPrincipalId", "inputContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "outputContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "errorContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "archiveContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "validateContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "exportStateContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "hostsContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "secretsContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "storage", "Storage Queue Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "exportLedgerTable", "Storage Table Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "xrefTable", "Storage Table Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "budgetTable", "Storage Table Data Contributor", "ServicePrincipal", False),
    ("appPrincipalId", "vault", "Key Vault Secrets User", "ServicePrincipal", False),
    ("appPrincipalId", "applicationInsights", "Monitoring Metrics Publisher", "ServicePrincipal", False),
    ("deploymentPrincipalId", "deploymentContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    ("eventGridPrincipalId", "deadLetterContainer", "Storage Blob Data Contributor", "ServicePrincipal", False),
    # Opt-in, and without principalType: a user, a group or a CI service principal all work.
    ("deployerPrincipalId", "storage", "Storage Blob Data Contributor", None, True),
    ("deployerPrincipalId", "storage", "Storage Table Data Contributor", None, True),
    ("deployerPrincipalId", "vault", "Key Vault Secrets Officer", None, True),
}

#: The symbol each scope in rbac.bicep refers to: (resource type, name parameter or literal).
EXPECTED_SCOPES = {
    "storage": ("Microsoft.Storage/storageAccounts", "storageAccountName"),
    "inputContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "inputContainerName"),
    "outputContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "outputContainerName"),
    "errorContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "errorContainerName"),
    "archiveContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "archiveContainerName"),
    "validateContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "validateContainerName"),
    "exportStateContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "exportStateContainerName"),
    "hostsContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "hostsContainerName"),
    "secretsContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "secretsContainerName"),
    "deploymentContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "deploymentContainerName"),
    "deadLetterContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers", "deadLetterContainerName"),
    "exportLedgerTable": ("Microsoft.Storage/storageAccounts/tableServices/tables", "exportLedgerTableName"),
    "xrefTable": ("Microsoft.Storage/storageAccounts/tableServices/tables", "xrefTableName"),
    "budgetTable": ("Microsoft.Storage/storageAccounts/tableServices/tables", "budgetTableName"),
    "vault": ("Microsoft.KeyVault/vaults", "keyVaultName"),
    "applicationInsights": ("Microsoft.Insights/components", "applicationInsightsName"),
}


def role_assignments() -> list[tuple[str, dict[str, Any], bool]]:
    return [
        (name, body(resource), "condition" in resource["config"])
        for name, resource in resources(RBAC, "Microsoft.Authorization/roleAssignments").items()
    ]


def test_role_assignments_are_exactly_the_expected_roles() -> None:
    guid_to_role = {guid: role for role, guid in ROLE.items()}
    actual = set()
    for name, config, conditional in role_assignments():
        props = config["properties"]
        role_var = props["roleDefinitionId"]
        guid = role_guid(role_var)
        assert guid in guid_to_role, f"{name}: unexpected role definition {guid}"
        actual.add((props["principalId"], config["scope"], guid_to_role[guid], props.get("principalType"), conditional))
        # Deterministic name: guid(scope.id, principalId, roleDefinitionId).
        name_fn = config["name"]["function"]
        assert name_fn["type"] == "guid", name
        args = name_fn["parameters"]
        assert args["base_string"]["operator"]["operands"] == {"operand_1": config["scope"], "operand_2": "id"}
        assert args["extra_string_1"] == props["principalId"]
        assert args["extra_string_2"] == role_var
        if conditional:
            assert resources(RBAC)[name]["config"]["condition"] == "grantDeployer", name
    assert actual == EXPECTED_ASSIGNMENTS


def test_role_scopes_are_the_intended_containers_and_table() -> None:
    """Each scope symbol is the resource it claims to be: a container-scoped role really is."""
    declared = resources(RBAC)
    for symbol, (type_, name_param) in EXPECTED_SCOPES.items():
        assert symbol in declared, symbol
        assert declared[symbol]["type"] == type_, symbol
        assert declared[symbol]["existing"] is True, symbol
        assert body(declared[symbol])["name"] == name_param, symbol
    used = {config["scope"] for _, config, _ in role_assignments()}
    assert used == set(EXPECTED_SCOPES)


def test_app_identity_has_no_account_wide_blob_or_table_role_and_no_access_to_its_package() -> None:
    for _, config, _ in role_assignments():
        props = config["properties"]
        if props["principalId"] != "appPrincipalId":
            continue
        role = {guid: role for role, guid in ROLE.items()}[role_guid(props["roleDefinitionId"])]
        assert role != "Storage Blob Data Owner"
        if role.startswith(("Storage Blob", "Storage Table")):
            assert config["scope"] != "storage", f"{role} on the whole account"
        assert config["scope"] != "deploymentContainer"
    # The only principal with a role on the package container is the deployment identity.
    package_roles = {c["properties"]["principalId"] for _, c, _ in role_assignments() if c["scope"] == "deploymentContainer"}
    assert package_roles == {"deploymentPrincipalId"}


def test_role_scopes_are_wired_to_the_deployed_containers_and_table() -> None:
    rbac_call = parse(MAIN)["modules"]["rbac"]["config"]["params"]
    for param in (*CONTAINER_PARAMS, "deploymentContainerName", "deadLetterContainerName", "exportLedgerTableName",
                  "xrefTableName", "budgetTableName"):
        accessor = json.dumps(rbac_call[param])
        assert '"storage"' in accessor and f'"{param}"' in accessor, param  # storage.outputs.<param>
    assert json.dumps(rbac_call["appPrincipalId"]).count("appIdentity") == 1
    assert json.dumps(rbac_call["deploymentPrincipalId"]).count("deploymentIdentity") == 1
    # The host containers the roles name are the ones storage.bicep creates.
    assert param_default(STORAGE, "hostContainerNames") == [
        param_default(RBAC, "hostsContainerName"),
        param_default(RBAC, "secretsContainerName"),
    ]


def test_role_assignments_live_only_in_rbac_bicep() -> None:
    for path in BICEP_FILES:
        if path != RBAC:
            assert not resources(path, "Microsoft.Authorization/roleAssignments"), path.name


def test_deployer_roles_are_opt_in_and_wired_from_azure_principal_id() -> None:
    assert param_default(RBAC, "deployerPrincipalId") == ""
    assert param_default(RBAC, "deployerDataAccess") is False
    assert param_default(MAIN, "deployerDataAccess") is False
    grant = parse(RBAC)["variables"]["grantDeployer"]["value"]["operator"]
    assert grant["type"] == "and"
    assert grant["operands"]["operand_1"] == "deployerDataAccess"
    rbac_call = parse(MAIN)["modules"]["rbac"]["config"]["params"]
    assert rbac_call["deployerPrincipalId"] == "principalId"
    assert rbac_call["deployerDataAccess"] == "deployerDataAccess"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["deployerDataAccess"]["value"] == "${TIMEBRIDGE_DEPLOYER_DATA_ACCESS=false}"


def test_deployment_package_uses_its_own_identity() -> None:
    site = only(FUNCTION, "Microsoft.Web/sites")
    auth = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "deploymentIdentityId"}
    assert set(site["identity"]["userAssignedIdentities"]) == {"'${identityId}'", "'${deploymentIdentityId}'"}
    # The code and the host use the app identity, never the deployment identity.
    for name, value in app_settings().items():
        assert "deploymentIdentity" not in json.dumps(value), name
    function_call = parse(MAIN)["modules"]["functionApp"]["config"]["params"]
    assert json.dumps(function_call["deploymentIdentityId"]).count("deploymentIdentity") == 1
    assert json.dumps(function_call["identityId"]).count("appIdentity") == 1
    identities = resources(MAIN, "Microsoft.ManagedIdentity/userAssignedIdentities")
    assert set(identities) == {"appIdentity", "deploymentIdentity"}


# ---- function app -------------------------------------------------------------------------------


def test_flex_consumption_plan() -> None:
    plan = only(FUNCTION, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["kind"] == "functionapp"
    assert plan["properties"]["reserved"] is True


def test_function_app_runs_python_311_on_flex_with_managed_identity() -> None:
    site = only(FUNCTION, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    assert "ftpsState" not in site["properties"]["siteConfig"]  # rejected by Flex; see basicPublishing...
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    assert config["runtime"]["version"] == "pythonVersion"
    assert param_default(FUNCTION, "pythonVersion") == "3.11"
    assert decorators(FUNCTION, "pythonVersion")["allowed"] == ["3.11"]
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storage.properties.primaryEndpoints.blob}${deploymentContainerName}"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert set(config["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB"}
    assert site["identity"]["type"] == "UserAssigned"
    assert "'${identityId}'" in site["identity"]["userAssignedIdentities"]
    tags = site["tags"]["function"]
    assert tags["type"] == "union" and tags["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}
    assert param_default(FUNCTION, "serviceName") == "api"


def test_ftp_and_basic_auth_publishing_are_disabled() -> None:
    policies = resources(FUNCTION, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


# ---- app settings -------------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_set_in_azure() -> None:
    names = set(app_settings())
    expected = all_setting_names() - LOCAL_ONLY_SETTINGS
    assert not expected - names, f"settings read by shared/platform/config.py but missing in function.bicep: {sorted(expected - names)}"


def test_every_app_setting_is_read_by_the_code_or_the_platform() -> None:
    names = set(app_settings())
    unknown = names - all_setting_names() - PLATFORM_SETTINGS
    assert not unknown, f"app settings nobody reads (typo?): {sorted(unknown)}"


def test_local_only_and_forbidden_settings_are_not_set() -> None:
    names = set(app_settings())
    assert all_setting_names() >= LOCAL_ONLY_SETTINGS, "allowlist names a setting the code no longer reads"
    assert not names & LOCAL_ONLY_SETTINGS
    assert not names & FORBIDDEN_SETTINGS


def test_no_app_setting_carries_a_key() -> None:
    for name, value in app_settings().items():
        text = json.dumps(value).lower()
        for marker in ("accountkey", "listkeys(", "list_keys", "sharedaccesssignature", "sig="):
            assert marker not in text, f"{name} looks key-based: {value}"


def test_storage_connections_are_identity_based() -> None:
    settings = app_settings()
    for prefix in ("AzureWebJobsStorage", "IntegrationStorage"):
        assert settings[f"{prefix}__credential"] == "managedidentity"
        assert settings[f"{prefix}__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    for service in ("blob", "queue", "table"):
        accessor = json.dumps(settings[f"IntegrationStorage__{service}ServiceUri"])
        assert '"primaryEndpoints"' in accessor and f'"{service}"' in accessor
    assert settings["KEY_VAULT_URL"] == "keyVaultUri"


def test_setting_defaults_match_the_code() -> None:
    """Parameters exposed in main.bicep default to what shared/platform/config.py defaults to."""
    main_params = {
        "MAX_FILE_BYTES": "maxFileBytes",
        "TARGET_SYSTEM": "targetSystem",
        "SMARTTID_BASE_URL": "smarttidBaseUrl",
        "SMARTTID_DEVICE_ID": "smarttidDeviceId",
        "TICTAC_BASE_URL": "tictacBaseUrl",
        "TICTAC_DAILY_CALL_BUDGET": "tictacDailyCallBudget",
        "TICTAC_USERNAME_TEMPLATE": "tictacUsernameTemplate",
        "TICTAC_USERNAME_PREFIX": "tictacUsernamePrefix",
        "HTTP_TIMEOUT_SECONDS": "httpTimeoutSeconds",
        "HTTP_MAX_ATTEMPTS": "httpMaxAttempts",
        "MAX_ANSWER_BYTES": "maxAnswerBytes",
        "IMPORT_TIME_LIMIT_SECONDS": "importTimeLimitSeconds",
        "EXPORT_INACTIVE_GRACE_DAYS": "exportInactiveGraceDays",
        "EXPORT_CORRECTION_DATE": "exportCorrectionDate",
        "TICTAC_EXPORT_ATTESTED_ONLY": "tictacExportAttestedOnly",
        "TICTAC_ABSENCE_PROJECTS": "tictacAbsenceProjects",
        "TICTAC_WORKTYPE_MAP": "tictacWorktypeMap",
        "TICTAC_EXPORT_LOOKBACK_DAYS": "tictacExportLookbackDays",
        "TICTAC_EXPORT_FORWARD_DAYS": "tictacExportForwardDays",
        "TICTAC_RECONCILE_MAX_LOSS_PERCENT": "tictacReconcileMaxLossPercent",
        "WRITE_CONCURRENCY": "writeConcurrency",
        "EXPORT_SCHEDULE": "exportSchedule",
        "RESUME_SCHEDULE": "resumeSchedule",
        "EXPORT_ENCODING": "exportEncoding",
        "EXPORT_DECIMAL_SEPARATOR": "exportDecimalSeparator",
        "EXPORT_WRITE_EMPTY_FILE": "exportWriteEmptyFile",
        "EXPORT_MARK_BATCH_SIZE": "exportMarkBatchSize",
        "SECRET_CACHE_TTL_SECONDS": "secretCacheTtlSeconds",
    }
    code = {f.alias: f.default for model in (Settings, SmartTidSettings, TicTacSettings)
            for f in model.model_fields.values()}
    function_call = parse(MAIN)["modules"]["functionApp"]["config"]["params"]
    settings = app_settings()
    for setting, param in main_params.items():
        default, expected = param_default(MAIN, param), code[setting]
        if expected is None:
            assert default == "", setting  # empty = unset
        elif isinstance(expected, bool):
            assert default is expected, setting
        elif isinstance(expected, (int, float)):
            assert float(default) == float(expected), setting
        else:
            assert default == str(getattr(expected, "value", expected)), setting
        # ...and the parameter really reaches that app setting.
        assert function_call[param] == param, setting
        value = json.dumps(settings[setting])
        assert f'"{param}"' in value, setting
    assert param_default(MAIN, "exportSchedule") == "0 */15 * * * *"


# ---- event grid ---------------------------------------------------------------------------------


def test_system_topic_watches_the_storage_account() -> None:
    topic = only(EVENTGRID, "Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert topic["properties"]["source"]["operator"]["operands"] == {"operand_1": "storage", "operand_2": "id"}
    assert topic["identity"] == {"type": "SystemAssigned"}


def subscription_named(name: str) -> dict[str, Any]:
    found = resources(SUBSCRIPTION, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    assert set(found) == {"blobCreatedSubscription", "validateSubscription"}
    return dict(body(found[name])["properties"])


def test_subscription_delivers_only_blob_created_in_the_input_container() -> None:
    subscription = subscription_named("blobCreatedSubscription")
    event_filter = subscription["filter"]
    assert event_filter["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert event_filter["subjectBeginsWith"] == "/blobServices/default/containers/${inputContainerName}/"
    assert param_default(SUBSCRIPTION, "inputContainerName") == param_default(MAIN, "inputContainerName")
    prefix = render(event_filter["subjectBeginsWith"], SUBSCRIPTION)
    assert f"/blobServices/default/containers/{param_default(MAIN, 'inputContainerName')}/blobs/a.csv".startswith(prefix)
    for other in ("outputContainerName", "errorContainerName", "archiveContainerName", "deadLetterContainerName",
                  "validateContainerName"):
        subject = f"/blobServices/default/containers/{param_default(MAIN, other)}/blobs/a.csv"
        assert not subject.startswith(prefix), other


def test_validate_subscription_delivers_the_drop_zone_to_the_validate_function() -> None:
    subscription = subscription_named("validateSubscription")
    assert subscription["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert subscription["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/${validateContainerName}/"
    assert param_default(SUBSCRIPTION, "validateContainerName") == param_default(MAIN, "validateContainerName")
    assert param_default(SUBSCRIPTION, "validateFunctionName") == "validate_file"
    assert "Host.Functions.${validateFunctionName}&code=${blobsExtensionKey}" in (
        subscription["destination"]["properties"]["endpointUrl"])
    assert subscription["deadLetterWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}


def test_subscription_targets_the_import_file_blob_webhook() -> None:
    subscription = subscription_named("blobCreatedSubscription")
    destination = subscription["destination"]
    assert destination["endpointType"] == "WebHook"
    url = destination["properties"]["endpointUrl"]
    assert url == (
        "https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs"
        "?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}"
    )
    assert param_default(SUBSCRIPTION, "functionName") == "import_file"
    assert param_default(MAIN, "importFunctionName") == "import_file"
    assert "secure" in decorators(SUBSCRIPTION, "blobsExtensionKey")
    assert subscription["eventDeliverySchema"] == "EventGridSchema"


def test_subscription_retries_and_dead_letters_with_its_identity() -> None:
    subscription = subscription_named("blobCreatedSubscription")
    assert set(subscription["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = subscription["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    assert param_default(SUBSCRIPTION, "deadLetterContainerName") == param_default(MAIN, "deadLetterContainerName")


# ---- outputs, azd and the postdeploy hook -------------------------------------------------------


def test_outputs_used_by_azd_and_the_hook() -> None:
    outputs = set(parse(MAIN)["outputs"])
    assert {
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_KEY_VAULT_NAME",
        "AZURE_KEY_VAULT_URL",
        "AZURE_EVENTGRID_SYSTEM_TOPIC_NAME",
        "AZURE_RESOURCE_GROUP",
    } <= outputs
    hook = HOOK.read_text()
    azd_builtin = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"}
    used = set(re.findall(r"\bAZURE_[A-Z_]+\b", hook))
    assert used, "the hook reads no azd outputs"
    assert used <= outputs | azd_builtin, f"hook reads unknown outputs {sorted(used - outputs - azd_builtin)}"


def test_hook_deploys_the_subscription_with_every_required_parameter() -> None:
    hook = HOOK.read_text()
    assert "eventgrid-subscription.bicep" in hook
    assert "systemKeys.blobs_extension" in hook
    required = {p for p, spec in parse(SUBSCRIPTION)["parameters"].items() if "default" not in spec}
    for name in required:
        assert re.search(rf"\b{name}\b", hook), f"hook does not pass {name}"


def test_azure_yaml_declares_the_function_service_and_hook() -> None:
    text = (ROOT / "azure.yaml").read_text()
    service = re.search(r"^services:\n  api:\n((?:    .*\n)+)", text, re.M)
    assert service, "azure.yaml has no services.api"
    block = service.group(1)
    for line in ("project: .", "language: python", "host: function"):
        assert re.search(rf"^\s+{re.escape(line)}\s*$", block, re.M), line
    assert re.search(r"^\s+run: \./infra/hooks/postdeploy\.sh\s*$", text, re.M)
    assert re.search(r"^  postdeploy:\s*$", text, re.M)


# ---- docs/deploying.md keeps the role table true ------------------------------------------------

DOC_PRINCIPAL = {
    "appPrincipalId": "App identity",
    "deploymentPrincipalId": "Deployment identity",
    "eventGridPrincipalId": "Event Grid topic",
    "deployerPrincipalId": "Deployer",
}
DOC_SCOPE = {
    "inputContainer": "`input`",
    "outputContainer": "`output`",
    "errorContainer": "`error`",
    "archiveContainer": "`archive`",
    "validateContainer": "`validate`",
    "exportStateContainer": "`export-state`",
    "hostsContainer": "`azure-webjobs-hosts`",
    "secretsContainer": "`azure-webjobs-secrets`",
    "deploymentContainer": "`app-package-…`",
    "deadLetterContainer": "`deadletter`",
    "exportLedgerTable": "`exportledger`",
    "xrefTable": "`crossref`",
    "budgetTable": "`callbudget`",
    "storage": "storage account",
    "vault": "key vault",
    "applicationInsights": "Application Insights",
}


def test_deploying_doc_has_a_row_for_every_role_assignment() -> None:
    text = (ROOT / "docs" / "deploying.md").read_text()
    section = text[text.index("## Who may do what"):text.index("## Data protection")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]
    for principal, scope, role, _, conditional in EXPECTED_ASSIGNMENTS:
        matching = [
            row for row in rows
            if row[0].startswith(DOC_PRINCIPAL[principal]) and role in row[1] and DOC_SCOPE[scope] in row[2]
        ]
        assert matching, f"docs/deploying.md has no row for {principal} / {role} / {scope}"
        assert ("opt-in" in matching[0][0]) is conditional, matching[0]
    assert "## Data protection" in text and "`SEND_CPR_NUMBER`" in text


# ---- the private-network option -----------------------------------------------------------------


def test_private_network_is_an_option_off_by_default_and_public_access_unchanged() -> None:
    assert param_default(MAIN, "vnetEnabled") is False
    assert param_default(MAIN, "storagePublicNetworkAccess") == "Enabled"
    assert set(decorators(MAIN, "storagePublicNetworkAccess")["allowed"]) == {"Enabled", "Disabled"}
    module = parse(MAIN)["modules"]["network"]
    assert module["detail"]["path"] == "app/network.bicep" and module["config"]["condition"] == "vnetEnabled"
    assert parse(MAIN)["modules"]["storage"]["config"]["params"]["publicNetworkAccess"] == "storagePublicNetworkAccess"
    account = only(STORAGE, "Microsoft.Storage/storageAccounts")["properties"]
    assert account["publicNetworkAccess"] == "publicNetworkAccess" and param_default(STORAGE, "publicNetworkAccess") == "Enabled"
    assert account["networkAcls"]["bypass"] == "AzureServices"  # Event Grid dead-lettering as a trusted service
    subnet = parse(MAIN)["modules"]["functionApp"]["config"]["params"]["subnetId"]["operator"]
    assert subnet["type"] == "conditional" and subnet["operands"]["condition"] == "vnetEnabled"
    assert subnet["operands"]["false_value"] == ""
    site = only(FUNCTION, "Microsoft.Web/sites")["properties"]
    assert site["virtualNetworkSubnetId"]["operator"]["operands"]["false_value"] == "subnetId"
    assert param_default(FUNCTION, "subnetId") == ""


def test_the_network_has_a_flex_subnet_and_private_endpoints_for_storage_and_the_vault() -> None:
    vnet = only(NETWORK, "Microsoft.Network/virtualNetworks")
    app, endpoints_subnet = vnet["properties"]["subnets"]
    [delegation] = app["properties"]["delegations"]
    assert delegation["properties"]["serviceName"] == "Microsoft.App/environments"  # Flex Consumption
    assert endpoints_subnet["name"] == "private-endpoints"
    endpoints = parse(NETWORK)["variables"]["endpoints"]["value"]
    assert {(e["name"], e["groupId"]) for e in endpoints} == {("blob", "blob"), ("queue", "queue"),
                                                             ("table", "table"), ("vault", "vault")}
    assert {e["zone"].split(".")[1] for e in endpoints} == {"blob", "queue", "table", "vaultcore"}
    found = resources(NETWORK)
    for name, type_ in (("privateEndpoints", "Microsoft.Network/privateEndpoints"),
                        ("zones", "Microsoft.Network/privateDnsZones"),
                        ("zoneLinks", "Microsoft.Network/privateDnsZones/virtualNetworkLinks"),
                        ("zoneGroups", "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")):
        assert found[name]["type"] == type_
        assert found[name]["config"]["loop_type"]["detail"]["array_name"] == "endpoints", name
    connection = body(found["privateEndpoints"])["properties"]["privateLinkServiceConnections"][0]["properties"]
    assert connection["groupIds"][0]["operator"]["operands"] == {"operand_1": "endpoint", "operand_2": "groupId"}
