"""The connector for the configured target system (``TARGET_SYSTEM``), with its secrets.

Used by the import, the dry run and the export alike; it reads the secrets (all of them, before any
request) each time a connector is built, so a rotated secret is picked up. The target is looked up
in :mod:`shared.targets.registry`: this module names none.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.platform.config import Settings
from shared.platform.keyvault import secret_provider
from shared.platform.secrets import SecretProvider
from shared.targets.base import Connector
from shared.targets.registry import target_settings, target_spec

ConnectorFactory = Callable[[], Connector]


def connector_factory(settings: Settings, secrets: SecretProvider | None = None) -> ConnectorFactory:
    """A factory that reads the secrets and builds the target's connector."""
    provider = secrets or secret_provider(settings)
    spec = target_spec(settings.target_system)
    own = target_settings(settings)  # a misconfigured target is refused before anything is read

    def build() -> Connector:
        return spec.build(settings, own, provider)

    return build
