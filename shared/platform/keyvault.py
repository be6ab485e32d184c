"""Secrets from Azure Key Vault, read with the function app's managed identity.

Used when ``KEY_VAULT_URL`` is set (see :func:`secret_provider` below). Authentication goes through
``DefaultAzureCredential``: on Azure Functions that is the App Service managed-identity endpoint
(``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``) with the user-assigned identity ``AZURE_CLIENT_ID``; on a
developer machine it falls back to ``az login`` and the other developer credentials.

Values are cached for ``ttl_seconds`` so a rotated secret is picked up without a restart; ``0`` disables the
cache. Values are only ever handled as :class:`pydantic.SecretStr`, and error messages are built from names,
status codes and service error texts, never from a secret value or an access token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from shared.errors import ConfigurationError, MissingSecretError, SecretStoreUnavailableError
from shared.platform.config import Settings
from shared.platform.secrets import EnvironmentSecrets, SecretProvider, SecretSpec

_log = logging.getLogger(__name__)

# SDK pipeline options. Retries: 3 quick retries (after ~0 s, 1 s, 2 s) ride out a transient blip but report an
# unreachable vault within seconds instead of the SDK default of 10 retries with backoff up to 2 minutes.
# HTTP logging stays at the SDK default (headers with values redacted, no bodies): never set logging_enable.
_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 3,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8,
    "connection_timeout": 10,
    "read_timeout": 30,
}

_CHECKS = (
    "Check that KEY_VAULT_URL is the vault's URI (https://<vault-name>.vault.azure.net/), that the function "
    "app can reach the vault over the network (vault firewall / private endpoint), and that its managed "
    "identity{identity} has the 'Key Vault Secrets User' role on the vault."
)


@dataclass(frozen=True)
class _Cached:
    value: SecretStr
    version: str | None
    expires_at: float


class KeyVaultSecrets:
    """:class:`shared.platform.secrets.SecretProvider` reading secrets from one Key Vault, with a TTL cache.

    Thread-safe: concurrent ``get`` calls for the same secret share a single vault read.
    Clients are created on the first ``get``, not at construction.
    """

    def __init__(
        self,
        vault_url: str,
        ttl_seconds: float = 300.0,
        managed_identity_client_id: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(vault_url.strip())
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise ConfigurationError(
                f"KEY_VAULT_URL '{vault_url}' is not a Key Vault URI; expected "
                "https://<vault-name>.vault.azure.net/ (Key vault > Overview > Vault URI in the Azure portal)."
            )
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.vault_url = vault_url.strip()
        self.vault_name = parts.hostname.split(".", 1)[0]
        self.ttl_seconds = float(ttl_seconds)
        self.managed_identity_client_id = managed_identity_client_id or None
        self._clock = clock
        self._lock = threading.Lock()  # guards the cache, the per-secret locks and client creation
        self._cache: dict[str, _Cached] = {}
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._client: Any = None
        self._credential: Any = None

    def __repr__(self) -> str:
        return f"KeyVaultSecrets(vault_url={self.vault_url!r}, ttl_seconds={self.ttl_seconds})"

    # --- public ---------------------------------------------------------------------------------
    def get(self, spec: SecretSpec) -> SecretStr:
        """The current value of ``spec`` (cached up to ``ttl_seconds``).

        Raises :class:`MissingSecretError` if the vault has no such secret (or it is empty) and
        :class:`SecretStoreUnavailableError` if the vault cannot be reached or denies access.
        """
        cached = self._fresh(spec.vault_name)
        if cached is not None:
            return cached
        with self._fetch_lock(spec.vault_name):
            cached = self._fresh(spec.vault_name)  # another thread may have read it meanwhile
            if cached is not None:
                return cached
            value, version = self._read(spec)
            if self.ttl_seconds > 0:
                with self._lock:
                    previous = self._cache.get(spec.vault_name)
                    self._cache[spec.vault_name] = _Cached(value, version, self._clock() + self.ttl_seconds)
                if previous is not None and previous.version != version:
                    _log.info("Key Vault secret '%s' changed to version %s", spec.vault_name, version)
            return value

    def close(self) -> None:
        with self._lock:
            client, credential = self._client, self._credential
            self._client = self._credential = None
        for resource in (client, credential):
            if resource is not None:
                resource.close()

    # --- internals ------------------------------------------------------------------------------
    def _fresh(self, name: str) -> SecretStr | None:
        with self._lock:
            entry = self._cache.get(name)
            if entry is not None and self._clock() < entry.expires_at:
                return entry.value
        return None

    def _fetch_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(name, threading.Lock())

    def _secret_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.identity import DefaultAzureCredential
                from azure.keyvault.secrets import SecretClient

                credential_options = {}
                if self.managed_identity_client_id:
                    credential_options["managed_identity_client_id"] = self.managed_identity_client_id
                self._credential = DefaultAzureCredential(**credential_options)
                self._client = SecretClient(self.vault_url, self._credential, **_CLIENT_OPTIONS)
            return self._client

    def _read(self, spec: SecretSpec) -> tuple[SecretStr, str | None]:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        # The error is raised after the except blocks, so the SDK exception (request, response, pipeline
        # context) is neither the __cause__ nor the __context__ of what the caller sees.
        error: Exception
        try:
            secret = self._secret_client().get_secret(spec.vault_name)
        except ResourceNotFoundError:
            error = self._missing(spec, "does not exist")
        except ClientAuthenticationError as exc:
            error = self._unavailable(
                spec, f"access was denied: the managed identity could not authenticate ({_reason(exc)})"
            )
        except HttpResponseError as exc:
            status = exc.status_code
            if status == 403:
                problem = f"access was denied (HTTP 403: {_reason(exc)})"
            elif status is not None and status < 300:
                problem = f"the vault's answer could not be read ({type(exc).__name__})"
            else:
                problem = f"the vault answered HTTP {status} ({_reason(exc)})"
            error = self._unavailable(spec, problem)
        except (ServiceRequestError, ServiceResponseError) as exc:
            error = self._unavailable(spec, f"the vault could not be reached ({_reason(exc)})")
        except (AzureError, ValueError) as exc:
            # e.g. the challenge names a resource that does not match the vault host
            error = self._unavailable(spec, f"the request failed ({type(exc).__name__}: {_reason(exc)})")
        else:
            raw = secret.value or ""
            if raw.strip():
                _log.debug(
                    "Read Key Vault secret '%s' (version %s)", spec.vault_name, secret.properties.version
                )
                return SecretStr(raw.strip()), secret.properties.version
            error = self._missing(spec, "exists but is empty")
        raise error

    def _missing(self, spec: SecretSpec, problem: str) -> MissingSecretError:
        return MissingSecretError(
            f"The Key Vault secret '{spec.vault_name}' ({spec.description}) {problem} in the vault "
            f"{self.vault_url}. Create it with: az keyvault secret set --vault-name {self.vault_name} "
            f"--name {spec.vault_name} --value '<{spec.description}>'"
        )

    def _unavailable(self, spec: SecretSpec, problem: str) -> SecretStoreUnavailableError:
        identity = (
            f" (client id {self.managed_identity_client_id})" if self.managed_identity_client_id else ""
        )
        return SecretStoreUnavailableError(
            f"Could not read the secret '{spec.vault_name}' from Key Vault {self.vault_url}: {problem}. "
            + _CHECKS.format(identity=identity)
        )


def _reason(exc: BaseException, limit: int = 300) -> str:
    """First line of an SDK error message, shortened (service / transport text, never request data)."""
    text = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def secret_provider(settings: Settings) -> SecretProvider:
    """The provider the settings ask for: Key Vault when KEY_VAULT_URL is set, else environment.

    The Key Vault provider is shared by every invocation in this process (its TTL cache would be
    useless otherwise), one per vault / TTL / identity.
    """
    if settings.key_vault_url:
        return _key_vault(settings.key_vault_url, settings.secret_cache_ttl_seconds, settings.azure_client_id)
    return EnvironmentSecrets()


@lru_cache(maxsize=4)
def _key_vault(vault_url: str, ttl_seconds: float, client_id: str | None) -> SecretProvider:
    return KeyVaultSecrets(vault_url=vault_url, ttl_seconds=ttl_seconds, managed_identity_client_id=client_id)
