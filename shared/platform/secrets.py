"""API secrets: one small module every connector asks for its credentials. Each target package names
its own secrets (``SecretSpec``s in ``shared/targets/<target>/__init__.py``).

Locally (and in tests) secrets come from environment variables / local.settings.json. In Azure,
when ``KEY_VAULT_URL`` is set, they come from Key Vault through the managed identity
(see :class:`KeyVaultSecrets`). Secret values are wrapped in :class:`pydantic.SecretStr` so they
never show up in a ``repr``, a log line or an exception text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from shared.errors import MissingSecretError


@dataclass(frozen=True)
class SecretSpec:
    """One secret: its environment-variable name (local) and its Key Vault secret name (Azure)."""

    env_var: str
    vault_name: str
    description: str


class SecretProvider(Protocol):
    def get(self, spec: SecretSpec) -> SecretStr: ...


class EnvironmentSecrets:
    """Secrets from environment variables (local.settings.json ``Values`` end up there)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, spec: SecretSpec) -> SecretStr:
        value = self._environ.get(spec.env_var, "").strip()
        if not value:
            raise MissingSecretError(
                f"The secret {spec.env_var} ({spec.description}) is not set. Add it to the Values "
                "of local.settings.json or as an environment variable, or set KEY_VAULT_URL to read "
                f"it from Key Vault as '{spec.vault_name}'."
            )
        return SecretStr(value)
