"""SmartTID through SmartAPI: the ERP's codes are the records' own fields; the export flags what it
transferred (``Transfered``). The connector is in :mod:`.connector`, loaded when first built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.platform.secrets import SecretSpec
from shared.targets.registry import LedgerKind, TargetSpec, register
from shared.targets.smarttid.settings import SmartTidSettings

SMARTTID_API_KEY = SecretSpec(
    env_var="SMARTTID_API_KEY",
    vault_name="smarttid-api-key",
    description="SmartAPI authorization token (sent as the API-Key header)",
)
SMARTTID_CUSTOMER_KEY = SecretSpec(
    env_var="SMARTTID_CUSTOMER_KEY",
    vault_name="smarttid-customer-key",
    description="SmartTID customer API key (sAPIKey, from SmartTID > IT setup > API access)",
)

if TYPE_CHECKING:
    from shared.platform.config import Settings
    from shared.platform.secrets import SecretProvider
    from shared.targets.base import Connector


def build(settings: Settings, own: SmartTidSettings, provider: SecretProvider) -> Connector:
    from shared.targets.http import RetryPolicy
    from shared.targets.smarttid.connector import SmartTidConnector

    api_key = provider.get(SMARTTID_API_KEY)
    customer_key = provider.get(SMARTTID_CUSTOMER_KEY)
    return SmartTidConnector(
        own.base_url,
        api_key,
        customer_key,
        device_id=own.device_id,
        timeout=settings.http_timeout_seconds,
        retry=RetryPolicy(attempts=settings.http_max_attempts),
        max_answer_bytes=settings.max_answer_bytes,
    )


SPEC = register(TargetSpec(
    name="smarttid",
    display_name="SmartTID",
    secrets=(SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY),
    build=build,
    settings=SmartTidSettings,
    ledger=LedgerKind.TRANSFERRED_FLAG,
))
