"""KeyVaultSecrets through the real Azure SDK against a local HTTPS Key Vault + managed-identity stub."""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme

from shared.errors import ConfigurationError, MissingSecretError, SecretStoreUnavailableError
from shared.platform.config import Settings
from shared.platform.keyvault import KeyVaultSecrets, secret_provider
from shared.targets.smarttid import SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY
from tests.support.keyvault_stub import KeyVaultStub, loopback_getaddrinfo

CLIENT_ID = "0f5c2f4e-1d2b-4b8e-9a51-7f0d2c3b4a5e"
API_KEY = "api-key-VALUE-7c1e9b"
CUSTOMER_KEY = "customer-key-VALUE-42d0aa"

# Credential settings that would steer DefaultAzureCredential away from the managed-identity path.
_FOREIGN_ENV = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "KEY_VAULT_URL",
    "SECRET_CACHE_TTL_SECONDS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def stub(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultStub]:
    """The stub, with the environment of an Azure Function using a user-assigned managed identity."""
    with KeyVaultStub(ca) as kv:
        for name in _FOREIGN_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IDENTITY_ENDPOINT", kv.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", kv.identity_header)
        monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
        # Trust the stub's CA the standard way (requests reads it per request); nothing test-specific in code.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", kv.ca_bundle)
        monkeypatch.setenv("SSL_CERT_FILE", kv.ca_bundle)
        monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo({kv.vault_host}))
        kv.set_secret(SMARTTID_API_KEY.vault_name, API_KEY)
        kv.set_secret(SMARTTID_CUSTOMER_KEY.vault_name, CUSTOMER_KEY)
        yield kv


@pytest.fixture
def make_provider(stub: KeyVaultStub) -> Iterator[Callable[..., KeyVaultSecrets]]:
    created: list[KeyVaultSecrets] = []

    def make(ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> KeyVaultSecrets:
        provider = KeyVaultSecrets(
            vault_url=stub.vault_url,
            ttl_seconds=ttl_seconds,
            managed_identity_client_id=CLIENT_ID,
            clock=clock,
        )
        created.append(provider)
        return provider

    yield make
    for provider in created:
        provider.close()


def _exception_text(exc: BaseException) -> str:
    """str, repr and the full formatted traceback (which includes any chained cause / context)."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    texts.append("".join(traceback.format_exception(exc)))
    return "\n".join(texts)


def test_reads_secrets_through_the_managed_identity(stub: KeyVaultStub) -> None:
    provider = secret_provider(
        Settings(KEY_VAULT_URL=stub.vault_url, SECRET_CACHE_TTL_SECONDS=300, AZURE_CLIENT_ID=CLIENT_ID)
    )
    try:
        assert isinstance(provider, KeyVaultSecrets)
        assert stub.requests == []  # nothing happens before the first get

        assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY
        assert provider.get(SMARTTID_CUSTOMER_KEY).get_secret_value() == CUSTOMER_KEY
    finally:
        provider.close()

    # The App Service managed-identity protocol, for the user-assigned identity, for the challenged resource.
    tokens = stub.token_requests()
    assert len(tokens) == 1  # one token, reused for the second secret
    assert tokens[0].status == 200
    assert tokens[0].query == {"api-version": "2019-08-01", "resource": stub.resource, "client_id": CLIENT_ID}
    assert tokens[0].headers["x-identity-header"] == stub.identity_header

    # Key Vault challenge first, then the managed-identity bearer token on every secret read.
    vault = stub.vault_requests()
    assert [r.status for r in vault] == [401, 200, 200]
    assert "authorization" not in vault[0].headers
    assert all(r.headers["authorization"] == f"Bearer {stub.issued_tokens[0]}" for r in vault[1:])
    assert [r.path.strip("/").split("/")[1] for r in vault[1:]] == [
        "smarttid-api-key",
        "smarttid-customer-key",
    ]
    assert all(r.query.get("api-version") for r in vault)


def test_missing_secret_names_vault_secret_and_fix(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    stub.delete_secret(SMARTTID_CUSTOMER_KEY.vault_name)
    provider = make_provider()
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY

    with pytest.raises(MissingSecretError) as caught:
        provider.get(SMARTTID_CUSTOMER_KEY)

    message = str(caught.value)
    assert stub.vault_url in message
    assert "'smarttid-customer-key'" in message
    assert SMARTTID_CUSTOMER_KEY.description in message
    assert (
        "az keyvault secret set --vault-name timebridge-kv --name smarttid-customer-key --value " in message
    )
    assert API_KEY not in _exception_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert stub.vault_requests("smarttid-customer-key", authorized=True)[-1].status == 404

    # An empty secret is as good as a missing one.
    stub.set_secret(SMARTTID_CUSTOMER_KEY.vault_name, "   ")
    with pytest.raises(MissingSecretError, match="exists but is empty"):
        provider.get(SMARTTID_CUSTOMER_KEY)


def test_rotated_secret_is_picked_up_after_the_ttl_not_before(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    clock = FakeClock()
    provider = make_provider(ttl_seconds=60, clock=clock)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY

    stub.set_secret(SMARTTID_API_KEY.vault_name, "api-key-ROTATED")
    clock.advance(59)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY  # still cached
    assert len(stub.vault_requests("smarttid-api-key", authorized=True)) == 1

    clock.advance(2)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == "api-key-ROTATED"
    assert len(stub.vault_requests("smarttid-api-key", authorized=True)) == 2

    # A secret deleted from the vault is noticed at the next expiry too.
    stub.delete_secret(SMARTTID_API_KEY.vault_name)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == "api-key-ROTATED"
    clock.advance(61)
    with pytest.raises(MissingSecretError):
        provider.get(SMARTTID_API_KEY)


def test_ttl_zero_reads_the_vault_every_time(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    provider = make_provider(ttl_seconds=0)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY
    stub.set_secret(SMARTTID_API_KEY.vault_name, "api-key-NEXT")
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == "api-key-NEXT"
    assert len(stub.vault_requests("smarttid-api-key", authorized=True)) == 2


def test_concurrent_gets_share_one_vault_read(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    provider = make_provider(ttl_seconds=300)
    barrier = threading.Barrier(8)

    def read() -> str:
        barrier.wait()
        return provider.get(SMARTTID_CUSTOMER_KEY).get_secret_value()

    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(lambda _: read(), range(8)))

    assert values == [CUSTOMER_KEY] * 8
    assert len(stub.vault_requests("smarttid-customer-key", authorized=True)) == 1


def test_unreachable_vault_gives_a_clear_error_quickly(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    clock = FakeClock()
    provider = make_provider(ttl_seconds=60, clock=clock)
    assert provider.get(SMARTTID_API_KEY).get_secret_value() == API_KEY

    stub.stop()
    clock.advance(61)  # cache expired: the next get must go to the (now unreachable) vault
    attempts = _count_connections(stub.vault_port)  # the vault's address answers by hanging up
    with pytest.raises(SecretStoreUnavailableError) as caught:
        provider.get(SMARTTID_API_KEY)

    message = str(caught.value)
    assert stub.vault_url in message
    assert "could not be reached" in message
    assert "KEY_VAULT_URL" in message and "Key Vault Secrets User" in message and "network" in message
    assert API_KEY not in _exception_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    # quickly, counted not timed: at most 1 + retry_total (3) attempts, not the SDK's default of 11
    assert 1 <= attempts() <= 4, attempts()


def _count_connections(port: int) -> Callable[[], int]:
    """A listener on ``port`` that accepts each connection and closes it at once; returns the count."""
    import socket

    listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
    count = [0]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            count[0] += 1
            connection.close()

    threading.Thread(target=serve, daemon=True).start()

    def attempts() -> int:
        listener.close()
        return count[0]

    return attempts


def test_access_denied_by_the_vault(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets]
) -> None:
    stub.forbidden = True
    with pytest.raises(SecretStoreUnavailableError) as caught:
        make_provider().get(SMARTTID_API_KEY)
    message = str(caught.value)
    assert "access was denied" in message and "403" in message
    assert stub.vault_url in message and "'smarttid-api-key'" in message
    assert f"client id {CLIENT_ID}" in message and "Key Vault Secrets User" in message
    assert stub.vault_requests(authorized=True)[-1].status == 403


def test_managed_identity_failure(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong-header")
    with pytest.raises(SecretStoreUnavailableError) as caught:
        make_provider().get(SMARTTID_API_KEY)
    message = str(caught.value)
    assert "access was denied" in message and "could not authenticate" in message
    assert stub.vault_url in message and "Key Vault Secrets User" in message
    assert [r.status for r in stub.token_requests()] == [401]
    assert stub.vault_requests(authorized=True) == []
    assert stub.identity_header not in _exception_text(caught.value)


def test_no_secret_or_token_in_logs_or_errors(
    stub: KeyVaultStub, make_provider: Callable[..., KeyVaultSecrets], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # the app turns it down to WARNING (shared/platform/log_levels.py); turned up, it still redacts
    caplog.set_level(logging.DEBUG, logger="azure.core.pipeline.policies.http_logging_policy")
    provider = make_provider(ttl_seconds=0)
    values = [provider.get(SMARTTID_API_KEY), provider.get(SMARTTID_CUSTOMER_KEY)]
    errors: list[BaseException] = []
    stub.delete_secret(SMARTTID_CUSTOMER_KEY.vault_name)
    stub.forbidden = False
    for spec, forbidden in ((SMARTTID_CUSTOMER_KEY, False), (SMARTTID_API_KEY, True)):
        stub.forbidden = forbidden
        with pytest.raises((MissingSecretError, SecretStoreUnavailableError)) as caught:
            provider.get(spec)
        errors.append(caught.value)

    forbidden_texts = [API_KEY, CUSTOMER_KEY, stub.identity_header, *stub.issued_tokens]
    assert stub.issued_tokens  # a token really was issued, so the check below is meaningful
    # The SDK really logged the requests at DEBUG/INFO (headers included, redacted) ...
    assert "Authorization': 'REDACTED'" in caplog.text
    assert any(r.name.startswith("azure.") for r in caplog.records)
    # ... but no secret value, access token or identity header appears anywhere.
    surfaces = [caplog.text, *(r.getMessage() for r in caplog.records)]
    surfaces += [_exception_text(e) for e in errors]
    surfaces += [repr(v) + str(v) for v in values] + [repr(provider)]
    for text in forbidden_texts:
        assert all(text not in surface for surface in surfaces), f"{text[:6]}... leaked"


def test_rejects_a_url_that_is_not_a_vault_uri() -> None:
    with pytest.raises(ConfigurationError, match="KEY_VAULT_URL"):
        KeyVaultSecrets(vault_url="timebridge-kv", ttl_seconds=300)


def test_the_key_vault_provider_and_its_cache_are_shared_by_invocations(stub: KeyVaultStub) -> None:
    settings = Settings(KEY_VAULT_URL=stub.vault_url, SECRET_CACHE_TTL_SECONDS=300, AZURE_CLIENT_ID=CLIENT_ID)
    first, second = secret_provider(settings), secret_provider(settings)
    try:
        assert first is second
        first.get(SMARTTID_API_KEY)
        second.get(SMARTTID_API_KEY)
        assert len([r for r in stub.requests if "/secrets/" in r.path]) <= 2  # challenge + one read
    finally:
        first.close()
