"""Tic-Tac Mobile: records linked to the ERP's keys by cross-references TimeBridge keeps, a daily call
budget, and an export from TimeBridge's own ledger of what it sent (with reversal lines). The
client, mapping and connector load when a connector is first built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.platform.secrets import SecretSpec
from shared.targets.registry import LedgerKind, TargetSpec, register
from shared.targets.tictac.settings import TicTacSettings

TICTAC_API_CODE = SecretSpec(
    env_var="TICTAC_API_CODE",
    vault_name="tictac-api-code",
    description="Tic-Tac Mobile API code (sent as Authorization: Bearer)",
)

if TYPE_CHECKING:
    from shared.platform.config import Settings
    from shared.platform.secrets import SecretProvider
    from shared.targets.base import Connector


def build(settings: Settings, own: TicTacSettings, provider: SecretProvider) -> Connector:
    """The API code from the secrets, the cross-references from ``XREF_TABLE``, the budget from ``BUDGET_TABLE``."""
    from shared.targets.budget import CallBudget, budget_id
    from shared.targets.tictac.client import RetryPolicy, TicTacClient
    from shared.targets.tictac.connector import TicTacConnector
    from shared.targets.tictac.mapping import UserNameRule
    from shared.targets.tictac.xref import CrossRefs

    api_code = provider.get(TICTAC_API_CODE)
    client = TicTacClient(own.base_url, api_code, timeout=settings.http_timeout_seconds,
                          retry=RetryPolicy(attempts=min(settings.http_max_attempts, 3)),
                          max_answer_bytes=settings.max_answer_bytes)
    return TicTacConnector(
        client,
        CrossRefs.connect(settings, settings.xref_table),
        user_names=UserNameRule(own.username_template, own.username_prefix),
        send_national_id=settings.send_cpr_number,
        budget=CallBudget.connect(settings, budget_id("tictac", api_code), own.daily_call_budget,
                                  table_name=settings.budget_table),
        settings=own,
    )


def tables(settings: Settings) -> tuple[str, ...]:
    return settings.xref_table, settings.budget_table


SPEC = register(TargetSpec(
    name="tictac",
    display_name="Tic-Tac",
    secrets=(TICTAC_API_CODE,),
    build=build,
    settings=TicTacSettings,
    call_limited=True,
    tables=tables,
    ledger=LedgerKind.SENT_LEDGER,
))
