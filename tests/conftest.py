"""Shared fixtures: real Azurite and the real SmartAPI sandbox over loopback sockets.

``.ci/run`` (via ``python -m tools.services run``) starts both and exports their settings; when the
tests are run without them, the session starts its own.

Every test is marked ``unit`` or ``integration`` here, by the fixtures it uses: a test that uses
``services`` or ``tictac_services`` (directly or through ``sandbox``, ``app_env``, ``settings``,
``storage``, ``tictac``, …) needs Azurite or a sandbox and is ``integration``; every other test is
``unit``. A test that starts services some other way says ``@pytest.mark.integration`` itself; a
``unit`` mark on a test that uses the service fixtures is refused. ``./scripts/test --unit`` runs
``-m unit`` with no service running and ``TIMEBRIDGE_NO_SERVICES`` set, so a unit test that needs
one fails there (docs/design.md, "Tests").
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.wiring import prepare_storage

SERVICE_VARIABLES = ("IntegrationStorage", "SMARTTID_SANDBOX_URL", "SMARTTID_API_KEY", "SMARTTID_CUSTOMER_KEY")
#: The fixtures that start (or find) Azurite and the sandboxes: a test using one is an integration test.
SERVICE_FIXTURES = frozenset({"services", "tictac_services"})
KINDS = ("unit", "integration")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test ``unit`` or ``integration`` by the fixtures it uses (see the module docstring)."""
    wrong: list[str] = []
    for item in items:
        needs = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        marked = {mark.name for mark in item.iter_markers() if mark.name in KINDS}
        if len(marked) > 1:
            wrong.append(f"{item.nodeid} is marked both unit and integration")
        elif needs and "unit" in marked:
            wrong.append(f"{item.nodeid} is marked unit but uses {', '.join(sorted(needs))}")
        elif not marked:
            item.add_marker(pytest.mark.integration if needs else pytest.mark.unit)
    if wrong:
        raise pytest.UsageError("a test that uses a service fixture is an integration test, never unit, "
                                "and a test is one or the other: " + "; ".join(wrong))


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    if all(os.environ.get(name) for name in SERVICE_VARIABLES):
        yield {name: os.environ[name] for name in SERVICE_VARIABLES} | {
            "SMARTTID_BASE_URL": os.environ["SMARTTID_SANDBOX_URL"]
        }
        return
    from tools.services import local_services

    with ExitStack() as stack:
        yield stack.enter_context(local_services())


@dataclass
class Sandbox:
    """Drives the SmartAPI sandbox's control endpoints."""

    url: str

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self, seeded: bool = True) -> None:
        self._control("POST", "reset", {"seeded": seeded})

    def calls(self) -> dict[str, int]:
        return self._control("GET", "calls")

    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.calls().items() if k.split()[0] in ("POST", "PUT") and "apilogin" not in k}

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return self._control("GET", "state")

    def fault(self, method: str, path: str, **kwargs: Any) -> None:
        self._control("POST", "faults", {"method": method, "path": path, **kwargs})

    def expire_sessions(self) -> None:
        self._control("POST", "expire-sessions")

    def wait_until_held(self, count: int = 1) -> None:
        """Until ``count`` requests wait at a ``hold`` fault (an event, not a time: the per-test
        timeout ends a test whose requests never come)."""
        wait_until_held(self._control, count)

    def release(self) -> None:
        self._control("POST", "release")

    def switch(self, **switches: Any) -> dict[str, Any]:
        """Set behaviour switches (see ``sandbox.smartapi.Switches``); a reset restores the defaults."""
        return self._control("POST", "switches", switches)

    def switches(self) -> dict[str, Any]:
        return self._control("GET", "switches")

    def outage(self) -> None:
        """SmartTID down: 503 for every request, the login included."""
        self.fault("*", "/", status=503, times=10**9)

    def delete(self, table: str, ids: list[int]) -> None:
        """Delete rows, as a user deleting entries in SmartTID would."""
        self._control("POST", "rows/delete", {"table": table, "ids": ids})

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        self._control("POST", "rows", {"table": table, "rows": rows})

    def find(self, table: str, **match: Any) -> list[dict[str, Any]]:
        return [row for row in self.state()[table] if all(row.get(k) == v for k, v in match.items())]


@pytest.fixture
def sandbox(services: dict[str, str]) -> Sandbox:
    box = Sandbox(services["SMARTTID_SANDBOX_URL"])
    box.reset()
    return box


@pytest.fixture
def app_env(services: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """App settings for one test: fresh, uniquely named containers; the sandbox as SmartTID."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "IntegrationStorage": services["IntegrationStorage"],
        "SMARTTID_BASE_URL": services["SMARTTID_SANDBOX_URL"],
        "SMARTTID_API_KEY": services["SMARTTID_API_KEY"],
        "SMARTTID_CUSTOMER_KEY": services["SMARTTID_CUSTOMER_KEY"],
        "INPUT_CONTAINER": f"input-{suffix}",
        "OUTPUT_CONTAINER": f"output-{suffix}",
        "ERROR_CONTAINER": f"error-{suffix}",
        "ARCHIVE_CONTAINER": f"archive-{suffix}",
        "VALIDATE_CONTAINER": f"validate-{suffix}",
        "EXPORT_STATE_CONTAINER": f"export-state-{suffix}",
        "EXPORT_LEDGER_TABLE": f"exportledger{suffix}",
        "HTTP_TIMEOUT_SECONDS": "2",
    }
    for name in ("KEY_VAULT_URL", "SMARTTID_DEVICE_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(app_env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def storage(settings: Settings) -> BlobServiceClient:
    """The test's containers and tables, created as ``python -m tools.timebridge init`` does (the app
    itself never creates a table at run time)."""
    service = blob_service(settings)
    prepare_storage(settings)
    yield service
    for name in settings.containers:
        service.delete_container(name)


def blob_names(service: BlobServiceClient, container: str) -> list[str]:
    return sorted(blob.name for blob in service.get_container_client(container).list_blobs())


def read_blob(service: BlobServiceClient, container: str, name: str) -> bytes:
    return service.get_blob_client(container, name).download_blob().readall()


# --- the Tic-Tac Mobile sandbox ----------------------------------------------------------------
@dataclass
class TicTacSandbox:
    """Drives the Tic-Tac sandbox's control endpoints; ``client()`` talks to its API."""

    url: str
    base_url: str
    api_code: str

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def client(self, *, accept: str = "application/json", **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10,
                            headers={"Authorization": f"Bearer {self.api_code}", "Accept": accept, **headers})

    def reset(self, seeded: bool = True, company: str = "document") -> None:
        self._control("POST", "reset", {"seeded": seeded, "company": company})

    def calls(self) -> dict[str, int]:
        return self._control("GET", "calls")

    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.calls().items() if k.split()[0] in ("POST", "PUT", "DELETE")}

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return self._control("GET", "state")

    def fault(self, method: str, path: str, **kwargs: Any) -> None:
        self._control("POST", "faults", {"method": method, "path": path, **kwargs})

    def switch(self, **values: Any) -> dict[str, Any]:
        return self._control("POST", "switches", values)

    def limit(self, limit: int | None = None, *, forget: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"forget": forget} | ({"limit": limit} if limit is not None else {})
        return self._control("POST", "limit", body)

    def advance(self, *, hours: float = 0, seconds: float = 0) -> str:
        return self._control("POST", "clock", {"advance_hours": hours, "advance_seconds": seconds})["now"]

    def set_now(self, iso: str) -> str:
        return self._control("POST", "clock", {"now": iso})["now"]

    def set_api_code(self, **body: Any) -> str:
        return self._control("POST", "api-code", body)["code"]

    def insert(self, table: str, rows: list[dict[str, Any]]) -> list[str]:
        return self._control("POST", "rows", {"table": table, "rows": rows})["ids"]

    def edit_entry(self, rowid: str, **values: Any) -> dict[str, Any]:
        return self._control("PATCH", f"entries/{rowid}", values)

    def delete_entry(self, rowid: str) -> None:
        self._control("DELETE", f"entries/{rowid}")

    def take_usernames(self, *names: str) -> None:
        self._control("POST", "taken-usernames", {"userNames": list(names)})

    def wait_until_held(self, count: int = 1) -> None:
        wait_until_held(self._control, count)

    def release(self) -> None:
        self._control("POST", "release")


def wait_until_held(control: Any, count: int) -> None:
    while control("GET", "held")["held"] < count:
        time.sleep(0.01)


@pytest.fixture(scope="session")
def tictac_services() -> Iterator[dict[str, str]]:
    names = ("TICTAC_BASE_URL", "TICTAC_SANDBOX_URL", "TICTAC_API_CODE")
    if all(os.environ.get(name) for name in names):
        yield {name: os.environ[name] for name in names}
        return
    from tools.services import tictac_sandbox

    with tictac_sandbox() as env:
        yield env


@pytest.fixture
def tictac(tictac_services: dict[str, str]) -> TicTacSandbox:
    box = TicTacSandbox(tictac_services["TICTAC_SANDBOX_URL"], tictac_services["TICTAC_BASE_URL"],
                        tictac_services["TICTAC_API_CODE"])
    box.reset()
    return box
