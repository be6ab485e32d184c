"""The connector for the configured target system (``TARGET_SYSTEM``), with its secrets.

Used by the import, the dry run and the export alike; it reads the secrets (all of them, before any
request) each time a connector is built, so a rotated secret is picked up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from shared.platform.config import Settings, TargetSystem
from shared.platform.keyvault import secret_provider
from shared.platform.secrets import SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY, SecretProvider
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
                )
        assert_never(settings.target_system)

    return build
