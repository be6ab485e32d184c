"""Start the local services TimeBridge needs — Azurite (npm, project-local) and the SmartAPI
sandbox — run a command with their settings in the environment, and stop them again.

    python -m tools.services run -- python -m pytest
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
#: Azurite's documented, public development account (not a secret; never used in Azure).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early (code {process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def azurite() -> Iterator[dict[str, str]]:
    if not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` in the project folder (scripts/bootstrap does)")
    blob, queue, table = free_port(), free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    log = open(Path(workdir) / "azurite.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(AZURITE), "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence",
         "--blobHost", "127.0.0.1", "--blobPort", str(blob),
         "--queueHost", "127.0.0.1", "--queuePort", str(queue),
         "--tableHost", "127.0.0.1", "--tablePort", str(table)],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )
    try:
        for port in (blob, queue, table):
            _wait_for_port(port, process, "Azurite")
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};"
        )
        yield {"IntegrationStorage": connection, "AzureWebJobsStorage": connection}
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _sandbox(module: str, what: str) -> Iterator[str]:
    """Run ``python -m <module> --port N`` on loopback; yields its base URL, stops it afterwards."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port)], cwd=ROOT)
    try:
        _wait_for_port(port, process, what)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process, signal.SIGTERM)


@contextmanager
def smartapi_sandbox() -> Iterator[dict[str, str]]:
    from sandbox.smartapi import DEFAULT_API_KEY, DEFAULT_CUSTOMER_KEY

    with _sandbox("sandbox.smartapi", "the SmartAPI sandbox") as url:
        yield {
            "SMARTTID_BASE_URL": url,
            "SMARTTID_SANDBOX_URL": url,
            "SMARTTID_API_KEY": DEFAULT_API_KEY,
            "SMARTTID_CUSTOMER_KEY": DEFAULT_CUSTOMER_KEY,
        }


@contextmanager
def tictac_sandbox() -> Iterator[dict[str, str]]:
    """The Tic-Tac Mobile sandbox; ``TICTAC_BASE_URL`` is the API root as in the document (``…/api/rest``)."""
    from sandbox.tictac import API, DEFAULT_API_CODE

    with _sandbox("sandbox.tictac", "the Tic-Tac sandbox") as url:
        yield {"TICTAC_BASE_URL": url + API, "TICTAC_SANDBOX_URL": url, "TICTAC_API_CODE": DEFAULT_API_CODE}


@contextmanager
def local_services() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        env: dict[str, str] = {}
        env |= stack.enter_context(azurite())
        env |= stack.enter_context(smartapi_sandbox())
        env |= stack.enter_context(tictac_sandbox())
        yield env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="start the services, run a command, stop the services")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [part for part in args.command if part != "--"] or [sys.executable, "-m", "pytest"]
    with local_services() as env:
        print("local services: Azurite and the SmartAPI sandbox at " + env["SMARTTID_BASE_URL"], flush=True)
        print("local services: the Tic-Tac sandbox at " + env["TICTAC_BASE_URL"], flush=True)
        return subprocess.call(command, env={**os.environ, **env}, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
