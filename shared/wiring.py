"""Build the pipeline's parts from settings (used by the functions, the demo and the tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from shared.importing.dry_run import DropZone
from shared.importing.intake import Intake
from shared.platform.config import Settings, TargetSystem
from shared.platform.secrets import SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY, SecretProvider, secret_provider
from shared.platform.storage import blob_service
from shared.targets.base import Connector
from shared.targets.smarttid import RetryPolicy, SmartTidConnector


def connector_factory(settings: Settings, secrets: SecretProvider | None = None) -> Callable[[], Connector]:
    """A factory that reads the secrets (both, before any request) and builds the target's connector."""
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


def build_intake(settings: Settings) -> Intake:
    return Intake(settings, blob_service(settings), connector_factory(settings))


def build_drop_zone(settings: Settings) -> DropZone:
    return DropZone(settings, blob_service(settings), connector_factory(settings))
