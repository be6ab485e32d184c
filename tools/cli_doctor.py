"""``timebridge doctor`` (is everything in place?) and ``timebridge init`` (create the containers and
tables, locally). Doctor reads only, never prints a secret, and spends at most one call of a target's
budget (Tic-Tac's ``/v1/hello``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.platform.safe_text import visible
from tools.cli_support import CONFIGURATION, OK, OPERATIONAL, CliError

#: Settings never shown, only whether they are set (a connection string holds the account key).
HIDDEN_SETTINGS = frozenset({"IntegrationStorage"})


@dataclass
class Check:
    name: str
    status: str  # ok | problem | skipped | info
    detail: str
    what_to_do: str = ""
    exit_code: int = OK

    def text(self) -> str:
        mark = {"ok": "ok", "problem": "PROBLEM", "skipped": "skipped", "info": "--"}[self.status]
        line = f"{self.name:<10} {mark:<8} {visible(self.detail)}"
        return line + (f"\n{'':<20}What to do: {visible(self.what_to_do)}" if self.what_to_do else "")


def _shown_value(name: str, value: Any) -> str:
    if value is None or value == "":
        return "(not set)"
    if name in HIDDEN_SETTINGS:
        return "(set; not shown: it holds the account key)"
    text = str(value.value if hasattr(value, "value") else value)
    if "://" in text:  # no user:password@ from a URL
        parts = urlsplit(text)
        text = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
    return text


def settings_in_effect(settings: Any) -> dict[str, dict[str, Any]]:
    """Every setting: its value (secrets never) and whether it is the default."""
    import contextlib

    from shared.errors import ConfigurationError
    from shared.targets.registry import target_settings

    models: list[Any] = [settings]
    with contextlib.suppress(ConfigurationError):  # a problem in the target's own is the Target check's
        models.append(target_settings(settings))
    shown: dict[str, dict[str, Any]] = {}
    for model in models:
        for name, spec in type(model).model_fields.items():
            value = getattr(model, name)
            shown[str(spec.alias or name)] = {"value": _shown_value(str(spec.alias), value),
                                              "default": value == spec.default}
    return shown


def _error_check(name: str, error: CliError) -> Check:
    return Check(name, "problem", error.message, error.what_to_do, error.exit_code)


def run_doctor(settings: Any, probe: bool = False) -> tuple[list[Check], dict[str, Any], list[Any]]:
    from shared.platform.storage import blob_service
    from shared.targets.registry import target_settings, target_spec
    from tools.cli_support import check_storage, configuration_error, storage_errors

    spec = target_spec(settings.target_system)
    checks: list[Check] = [Check("Settings", "ok", f"valid; target {spec.display_name}")]
    tables = [settings.export_ledger_table, *spec.tables(settings)]
    storage_ok = False
    try:
        found = check_storage(settings, settings.containers, tables)
    except CliError as exc:
        checks.append(_error_check("Storage", exc))
    else:
        missing = [f"container {name}" for name in found.missing_containers] + [
            f"table {name}" for name in found.missing_tables]  # the app never creates them at run time
        if missing:
            checks.append(Check("Storage", "problem", f"{found.endpoint} reachable, but {', '.join(missing)} "
                                f"{'does' if len(missing) == 1 else 'do'} not exist",
                                "run timebridge init (local storage); in Azure, azd provision creates them",
                                CONFIGURATION))
        else:
            storage_ok = True
            checks.append(Check("Storage", "ok", f"{found.endpoint} reachable; the {len(settings.containers)} "
                                f"containers and {len(tables)} tables are there"))
    checks.append(_secrets_check(settings))
    connector = None
    if checks[-1].status == "ok" and (storage_ok or not spec.tables(settings)):
        from shared.targets.factory import connector_factory

        quick = settings.model_copy(update={"http_max_attempts": 1})
        try:
            with storage_errors(settings):
                connector = connector_factory(quick)()
        except CliError as exc:
            checks.append(_error_check("Target", exc))
        except Exception as exc:  # a setting or secret the factory refuses
            from shared.errors import TimeBridgeError

            if not isinstance(exc, TimeBridgeError):
                raise
            checks.append(_error_check("Target", configuration_error(exc)))  # type: ignore[arg-type]
    else:
        checks.append(Check("Target", "skipped", "not asked: fix the problems above first"))
    findings: list[Any] = []
    try:
        if connector is not None:
            checks.append(_target_check(connector, settings, spec.display_name))
            if probe and checks[-1].status == "ok":
                findings = _probe(settings, connector)
            remaining = connector.remaining_calls()
            checks.append(Check("Budget", "info", "not limited for this target" if remaining is None else
                                f"{remaining} calls left in the rolling 24 hours "
                                f"({target_settings(settings).call_budget_text()})"))
    finally:
        if connector is not None:
            connector.close()
    if storage_ok:
        from shared.importing.deferral import Deferrals

        with storage_errors(settings):
            pending = Deferrals(blob_service(settings), settings.archive_container,
                                settings.target_system).entries()
        checks.append(Check("Deferrals", "info", "none pending" if not pending else
                            "; ".join(f"{visible(e.source)}: {e.waiting} lines wait" for e in pending)))
    return checks, settings_in_effect(settings), findings


def _probe(settings: Any, connector: Any) -> list[Any]:
    from shared.errors import TimeBridgeError
    from shared.platform.keyvault import secret_provider
    from shared.targets.tictac import TICTAC_API_CODE
    from tools.cli_probe import CANNOT_TELL, Finding, probe_tictac

    if settings.target_system != "tictac":
        return [Finding("-", "probe", CANNOT_TELL, "the probe checks Tic-Tac's guesses; for SmartTID the login above "
                        "is the check")]
    import httpx

    try:
        code = secret_provider(settings).get(TICTAC_API_CODE).get_secret_value()
        return probe_tictac(settings, connector, code)
    except (httpx.HTTPError, TimeBridgeError) as exc:
        return [Finding("-", "probe", CANNOT_TELL, f"stopped: {type(exc).__name__}")]


def _secrets_check(settings: Any) -> Check:
    from shared.errors import MissingSecretError, SecretStoreUnavailableError
    from shared.platform.keyvault import secret_provider
    from shared.targets.registry import target_spec
    from tools.cli_support import configuration_error

    specs = target_spec(settings.target_system).secrets
    where = f"Key Vault {settings.key_vault_url}" if settings.key_vault_url else "the environment / local.settings.json"
    provider = secret_provider(settings)
    for spec in specs:
        try:
            provider.get(spec)
        except (MissingSecretError, SecretStoreUnavailableError) as exc:
            error = configuration_error(exc)
            return Check("Secrets", "problem", error.message, error.what_to_do, CONFIGURATION)
    names = ", ".join(spec.vault_name if settings.key_vault_url else spec.env_var for spec in specs)
    return Check("Secrets", "ok", f"{names} set (from {where}; values not shown)")


def _target_check(connector: Any, settings: Any, target: str) -> Check:
    from shared.errors import ApiUnavailableError, AuthenticationFailedError, TimeBridgeError
    from shared.targets.registry import target_settings
    from shared.targets.smarttid.connector import SmartTidConnector

    address = _shown_value('', getattr(target_settings(settings), 'base_url', ''))
    try:
        if isinstance(connector, SmartTidConnector):
            connector.check_login()
            return Check("Target", "ok", f"SmartTID login at {address} succeeded")
        if not connector.reserve(1):
            return Check("Target", "problem", "Tic-Tac's call budget has no room for one call now; /v1/hello was "
                         "not called", "wait for the budget (timebridge status), then run timebridge doctor again",
                         OPERATIONAL)
        try:
            connector.client.hello()
        finally:
            connector.settle()
        return Check("Target", "ok", f"Tic-Tac /v1/hello at {address} answered")
    except AuthenticationFailedError as exc:
        return Check("Target", "problem", str(exc), "fix the secrets as described, then run timebridge doctor again",
                     CONFIGURATION)
    except ApiUnavailableError as exc:
        return Check("Target", "problem", f"{target} cannot be reached: {exc}",
                     f"check {'SMARTTID_BASE_URL' if target == 'SmartTID' else 'TICTAC_BASE_URL'} and the network",
                     OPERATIONAL)
    except TimeBridgeError as exc:
        return Check("Target", "problem", f"{target} answered unexpectedly: {exc}",
                     "run timebridge doctor --debug and send the output to TimeBridge support", OPERATIONAL)


def doctor_data(checks: list[Check], settings: dict[str, Any], findings: list[Any]) -> dict[str, Any]:
    worst = max((check.exit_code for check in checks), default=OK)
    data = {"ok": worst == OK, "exit_code": worst, "checks": [asdict(check) for check in checks],
            "settings": settings}
    if findings:
        data["probe"] = [asdict(finding) for finding in findings]
    return data


def doctor_text(checks: list[Check], settings: dict[str, Any], all_settings: bool, findings: list[Any]) -> str:
    lines = ["TimeBridge doctor", ""]
    lines += [check.text() for check in checks]
    if findings:
        lines += ["", "Probe (docs/targets.md: Every guess about the Tic-Tac API; reads only):"]
        lines += [f"  {finding.verdict:<12} #{finding.guess:<6} {finding.topic}: {visible(finding.detail)}"
                  for finding in findings]
    changed = {name: item for name, item in settings.items() if all_settings or not item["default"]}
    lines += ["", "Settings in effect" + ("" if all_settings else
                                          f" (not at their defaults; {len(settings) - len(changed)} others are; "
                                          "--all-settings shows every one)") + ":"]
    lines += [f"  {name} = {visible(item['value'])}" for name, item in sorted(changed.items())]
    return "\n".join(lines)


def run_init(settings: Any) -> dict[str, Any]:
    """Create every container and table TimeBridge uses; an existing one is fine."""
    from azure.core.exceptions import ResourceExistsError

    from shared.platform.storage import blob_service, ensure_containers, table_service
    from tools.cli_support import check_storage, storage_errors

    found = check_storage(settings, settings.containers, [settings.export_ledger_table, settings.xref_table,
                                                          settings.budget_table])
    created: list[str] = []
    with storage_errors(settings):
        ensure_containers(blob_service(settings), tuple(found.missing_containers))
        created += [f"container {name}" for name in found.missing_containers]
        tables = table_service(settings)
        for name in found.missing_tables:
            try:
                tables.create_table(name)
                created.append(f"table {name}")
            except ResourceExistsError:
                pass
    existing = [f"container {n}" for n in settings.containers if n not in found.missing_containers] + [
        f"table {n}" for n in (settings.export_ledger_table, settings.xref_table, settings.budget_table)
        if n not in found.missing_tables]
    return {"storage": found.endpoint, "created": created, "already_there": existing}
