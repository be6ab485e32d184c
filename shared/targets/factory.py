"""The connector for the configured target system (``TARGET_SYSTEM``), with its secrets.

Used by the import, the dry run and the export alike; it reads the secrets (all of them, before any
request) each time a connector is built, so a rotated secret is picked up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from shared.platform.config import Settings, TargetSystem
from shared.platform.keyvault import secret_provider
from shared.platform.secrets import SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY, TICTAC_API_CODE, SecretProvider
from shared.targets.base import Connector
from shared.targets.smarttid import RetryPolicy, SmartTidConnector

ConnectorFactory = Callable[[], Connector]


def connector_factory(settings: Settings, secrets: SecretProvider | None = None) -> ConnectorFactory:
    """A factory that reads the secrets and builds the target's connector."""
    provider = secrets or secret_provider(settings)

    def build() -> Connector:
        match settings.target_system:
            case TargetSystem.SMARTTID:
                api_key = provider.get(SMARTTID_API_KEY)
                customer_key = provider.get(SMARTTID_CUSTOMER_KEY)
                return SmartTidConnector(
                    settings.smarttid_base_url,
                    api_key,
                    customer_key,
                    device_id=settings.smarttid_device_id,
                    timeout=settings.http_timeout_seconds,
                    retry=RetryPolicy(attempts=settings.http_max_attempts),
                    max_answer_bytes=settings.max_answer_bytes,
                )
            case TargetSystem.TICTAC:
                return tictac_connector(settings, provider)
        assert_never(settings.target_system)

    return build


def tictac_connector(settings: Settings, provider: SecretProvider) -> Connector:
    """The Tic-Tac connector: the API code from the secrets, the cross-references from ``XREF_TABLE``."""
    from shared.targets import tictac
    from shared.targets.budget import CallBudget, budget_id
    from shared.targets.tictac_connector import TicTacConnector
    from shared.targets.tictac_mapping import UserNameRule
    from shared.targets.xref import CrossRefs

    api_code = provider.get(TICTAC_API_CODE)
    client = tictac.TicTacClient(settings.tictac_base_url, api_code, timeout=settings.http_timeout_seconds,
                                 retry=tictac.RetryPolicy(attempts=min(settings.http_max_attempts, 3)),
                                 max_answer_bytes=settings.max_answer_bytes)
    return TicTacConnector(
        client,
        CrossRefs.connect(settings, settings.xref_table),
        user_names=UserNameRule(settings.tictac_username_template, settings.tictac_username_prefix),
        send_national_id=settings.send_cpr_number,
        budget=CallBudget.connect(settings, budget_id("tictac", api_code), settings.tictac_daily_call_budget,
                                  table_name=settings.budget_table),
    )
