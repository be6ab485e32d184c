"""Tables are created by infra/ (or locally by ``python -m tools.timebridge init``), never by the app at
run time: the app's role is scoped to each table, and a create may be refused there (Azurite)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.data.tables import AccountSasPermissions, ResourceTypes, TableServiceClient, generate_account_sas
from click.testing import CliRunner

from shared.errors import ConfigurationError
from shared.export import run_export
from shared.platform.config import Settings
from shared.platform.storage import ensure_tables, table_service
from shared.targets.budget import CallBudget
from shared.targets.tictac.xref import CrossRefs
from tests.conftest import Sandbox
from tools.timebridge import cli


def table_names(service: TableServiceClient) -> set[str]:
    return {table.name for table in service.list_tables()}


def test_the_app_creates_no_table_at_run_time(storage, settings: Settings, sandbox: Sandbox) -> None:
    suffix = uuid.uuid4().hex[:8]
    missing = {"export_ledger_table": f"noledger{suffix}", "xref_table": f"noxref{suffix}",
               "budget_table": f"nobudget{suffix}"}
    unready = settings.model_copy(update=missing)
    service = table_service(settings)

    CrossRefs.connect(unready, unready.xref_table)  # the Tic-Tac connector's parts, as each build makes them
    CallBudget.connect(unready, "tictac-x", 10, table_name=unready.budget_table)
    with pytest.raises(ConfigurationError) as caught:
        run_export(unready)

    assert f"'noledger{suffix}' (EXPORT_LEDGER_TABLE) does not exist" in str(caught.value)
    assert "python -m tools.timebridge init" in str(caught.value)
    assert not set(missing.values()) & table_names(service)


def test_init_creates_the_tables_and_a_refused_create_counts_as_existing(storage, settings: Settings,
                                                                          monkeypatch) -> None:
    suffix = uuid.uuid4().hex[:8]
    for name, value in (("EXPORT_LEDGER_TABLE", f"initledger{suffix}"), ("XREF_TABLE", f"initxref{suffix}"),
                        ("BUDGET_TABLE", f"initbudget{suffix}")):
        monkeypatch.setenv(name, value)
    service = table_service(settings)

    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert {f"initledger{suffix}", f"initxref{suffix}", f"initbudget{suffix}"} <= table_names(service)
    assert all(f"created table {name}{suffix}" in result.output for name in ("initledger", "initxref", "initbudget"))
    # An identity that may use tables but not create them (as infra/ grants): refused, taken as existing.
    key = service.credential.named_key
    sas = generate_account_sas(AzureNamedKeyCredential(key.name, key.key), resource_types=ResourceTypes(object=True),
                               permission=AccountSasPermissions(read=True, write=True, update=True, add=True),
                               expiry=datetime.now(UTC) + timedelta(hours=1))
    limited = TableServiceClient(service.url, credential=AzureSasCredential(sas))
    assert ensure_tables(limited, [f"refused{suffix}", f"initledger{suffix}"]) == []
    assert f"refused{suffix}" not in table_names(service)
    for name in (f"initledger{suffix}", f"initxref{suffix}", f"initbudget{suffix}"):
        service.delete_table(name)
