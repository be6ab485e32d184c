"""A local stand-in for Azure Key Vault and the App Service managed-identity endpoint.

The real Azure SDK (``azure-keyvault-secrets`` + ``azure-identity``) talks to it unchanged:

* **Key Vault data plane** over HTTPS (certificate issued by a ``trustme`` CA the tests trust through
  ``REQUESTS_CA_BUNDLE``): ``GET /secrets/{name}[/{version}]?api-version=...``. A request without a bearer
  token gets Key Vault's ``401`` challenge; with a token issued by the identity endpoint it gets the secret JSON
  or Key Vault's ``404 SecretNotFound`` error JSON.
* **App Service managed identity** over plain HTTP, like the ``IDENTITY_ENDPOINT`` App Service / Azure
  Functions expose on localhost: ``GET /msi/token?api-version=2019-08-01&resource=...[&client_id=...]`` with
  the ``X-IDENTITY-HEADER`` header.

The vault is served under a vault-like host name (default ``timebridge-kv.vault.azure.net``) that
:func:`loopback_getaddrinfo` resolves to 127.0.0.1, so the SDK's challenge-resource check runs as in production.
That check compares the request authority *including the port* with the challenge resource, so the challenge
names ``https://vault.azure.net:<port>``. Every request is recorded; tests can set, rotate and delete secrets,
deny access, and stop the server to simulate an unreachable vault.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import trustme

DEFAULT_VAULT_HOST = "timebridge-kv.vault.azure.net"
DEFAULT_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MSI_API_VERSION = "2019-08-01"
MSI_PATH = "/msi/token"


@dataclass(frozen=True)
class RecordedRequest:
    server: str  # "vault" or "identity"
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    status: int = 0


@dataclass
class _Secret:
    value: str
    version: str
    created: int = field(default_factory=lambda: int(time.time()))


class KeyVaultStub:
    """Vault + managed-identity endpoint on 127.0.0.1 (random free ports). Use as a context manager."""

    def __init__(
        self,
        ca: trustme.CA,
        *,
        vault_host: str = DEFAULT_VAULT_HOST,
        tenant_id: str = DEFAULT_TENANT_ID,
        ca_dir: str | Path | None = None,
    ) -> None:
        self.ca = ca
        self.vault_host = vault_host
        self.tenant_id = tenant_id
        self.identity_header = "idh-" + secrets.token_hex(12)
        self.forbidden = False  # True: authenticated vault requests get 403 (identity lacks the role)
        self.requests: list[RecordedRequest] = []
        self.issued_tokens: list[str] = []
        self._secrets: dict[str, _Secret] = {}
        self._lock = threading.Lock()
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="kvstub-", dir=ca_dir)
        self.ca_bundle = str(Path(self._tmp.name) / "stub-ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        self.vault_port = 0
        self.identity_port = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        leaf = self.ca.issue_cert(self.vault_host, "127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        vault = self._serve("vault", context)
        identity = self._serve("identity", None)
        self.vault_port = vault.server_address[1]
        self.identity_port = identity.server_address[1]
        return self

    def stop(self) -> None:
        """Shut both listeners down; afterwards connections to their ports are refused."""
        servers, self._servers = self._servers, []
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- addresses -----------------------------------------------------------------------------
    @property
    def vault_url(self) -> str:
        return f"https://{self.vault_host}:{self.vault_port}/"

    @property
    def resource(self) -> str:
        """The AAD resource the challenge names (parent domain of the vault host, same port)."""
        parent = self.vault_host.split(".", 1)[1]
        return f"https://{parent}:{self.vault_port}"

    @property
    def identity_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.identity_port}{MSI_PATH}"

    # --- secrets --------------------------------------------------------------------------------
    def set_secret(self, name: str, value: str) -> str:
        """Create or rotate a secret (new version); returns the version id."""
        version = secrets.token_hex(16)
        with self._lock:
            self._secrets[name] = _Secret(value=value, version=version)
        return version

    def delete_secret(self, name: str) -> None:
        with self._lock:
            self._secrets.pop(name, None)

    # --- inspection -----------------------------------------------------------------------------
    def vault_requests(
        self, secret_name: str | None = None, *, authorized: bool | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            found = [r for r in self.requests if r.server == "vault"]
        if secret_name is not None:
            found = [r for r in found if r.path.strip("/").split("/")[1:2] == [secret_name]]
        if authorized is not None:
            found = [r for r in found if ("authorization" in r.headers) == authorized]
        return found

    def token_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.server == "identity"]

    # --- request handling -----------------------------------------------------------------------
    def _serve(self, kind: str, context: ssl.SSLContext | None) -> ThreadingHTTPServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so a stopped stub leaves no live keep-alive socket.
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                route = stub._vault if kind == "vault" else stub._identity
                status, headers, body = route(self)
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"kvstub-{kind}", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))
        return server

    def _record(self, kind: str, handler: BaseHTTPRequestHandler, status: int) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(kind, handler.command, parts.path, query, headers, status))

    def _respond(
        self,
        kind: str,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        self._record(kind, handler, status)
        return status, headers or {}, body

    def _identity(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path != MSI_PATH:
            return self._respond("identity", handler, 404, {"statusCode": 404, "message": "Not found"})
        if handler.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return self._respond(
                "identity",
                handler,
                401,
                {"statusCode": 401, "message": "Missing or invalid X-IDENTITY-HEADER"},
            )
        if query.get("api-version") != MSI_API_VERSION or not query.get("resource"):
            return self._respond("identity", handler, 400, {"statusCode": 400, "message": "Bad request"})
        token = "mi-token-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.append(token)
        body = {
            "access_token": token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": query["resource"],
            "token_type": "Bearer",
            "client_id": query.get("client_id", "system-assigned"),
        }
        return self._respond("identity", handler, 200, body)

    def _vault(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        segments = [s for s in parts.path.split("/") if s]
        auth = handler.headers.get("Authorization", "")
        with self._lock:
            valid_tokens = set(self.issued_tokens)
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in valid_tokens:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                f'resource="{self.resource}"'
            )
            error = {
                "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer token."}
            }
            return self._respond("vault", handler, 401, error, {"WWW-Authenticate": challenge})
        if not query.get("api-version"):
            error = {"error": {"code": "BadParameter", "message": "The request URI is missing api-version."}}
            return self._respond("vault", handler, 400, error)
        if self.forbidden:
            error = {
                "error": {
                    "code": "Forbidden",
                    "message": "Caller is not authorized to perform action on resource.",
                    "innererror": {"code": "ForbiddenByRbac"},
                }
            }
            return self._respond("vault", handler, 403, error)
        if len(segments) not in (2, 3) or segments[0] != "secrets":
            error = {"error": {"code": "NotFound", "message": "Operation not found."}}
            return self._respond("vault", handler, 404, error)
        name = segments[1]
        with self._lock:
            secret = self._secrets.get(name)
        if secret is None or (len(segments) == 3 and segments[2] != secret.version):
            error = {
                "error": {
                    "code": "SecretNotFound",
                    "message": f"A secret with (name/id) {name} was not found in this key vault.",
                }
            }
            return self._respond("vault", handler, 404, error)
        body = {
            "value": secret.value,
            "id": f"https://{self.vault_host}:{self.vault_port}/secrets/{name}/{secret.version}",
            "attributes": {
                "enabled": True,
                "created": secret.created,
                "updated": secret.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }
        return self._respond("vault", handler, 200, body)


def loopback_getaddrinfo(
    hosts: set[str], real: Callable[..., Any] = socket.getaddrinfo
) -> Callable[..., Any]:
    """A ``socket.getaddrinfo`` replacement resolving ``hosts`` to 127.0.0.1 (others unchanged)."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.lower() in hosts:
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    return getaddrinfo


@contextmanager
def running_stub(ca: trustme.CA, **kwargs: Any) -> Iterator[KeyVaultStub]:
    stub = KeyVaultStub(ca, **kwargs)
    with stub:
        yield stub
