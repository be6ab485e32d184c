"""The local playground (``./scripts/demo --keep``): the services started by ``tools.services up``
stay running on the ports asked for, say their settings, and stop with ``down``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tools.services import ROOT, free_port


def services(verb: str, local: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.services", verb, *more], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, "TIMEBRIDGE_LOCAL_DIR": str(local)}, check=False)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.integration  # starts Azurite and the sandboxes itself (not through the service fixtures)
def test_up_leaves_the_services_running_until_down(tmp_path: Path) -> None:
    local = tmp_path / ".local"
    ports = [free_port() for _ in range(5)]
    started = services("up", local, "--ports", ",".join(map(str, ports)))
    try:
        assert started.returncode == 0, started.stderr
        assert all(listening(port) for port in ports)
        exported = dict(line.removeprefix("export ").split("=", 1) for line in services("env", local).stdout.splitlines())
        assert exported["SMARTTID_BASE_URL"] == f"http://127.0.0.1:{ports[3]}"
        storage = json.loads((local / "services.json").read_text())["env"]["IntegrationStorage"]
        BlobServiceClient.from_connection_string(storage).create_container("playground")  # a real Azurite
        settings = json.loads((tmp_path / "local.settings.json").read_text())["Values"]
        assert settings["TICTAC_BASE_URL"] == f"http://127.0.0.1:{ports[4]}/api/rest"
        again = services("up", local)  # already up: the same services, nothing started twice
        assert again.returncode == 0
    finally:
        stopped = services("down", local)
    assert stopped.stdout.strip() == "local services stopped"
    assert not any(listening(port) for port in ports)  # down returns once they are gone
    assert services("env", local).returncode == 3
