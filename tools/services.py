"""Start the local services TimeBridge needs — Azurite (npm, project-local) and the SmartAPI and
Tic-Tac sandboxes — run a command with their settings in the environment, and stop them again.

    python -m tools.services run -- python -m pytest

A local playground that stays (``./scripts/demo --keep``): ``up`` starts them on the fixed ports of
``local.settings.json.example`` (Azurite 10000-10002 with its data in ``.local/azurite``, SmartAPI
sandbox 8791, Tic-Tac sandbox 8792), writes ``local.settings.json`` and ``.local/services.json`` (the
processes and their settings), and leaves them running; ``env`` prints their settings as shell
``export`` lines; ``down`` stops them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
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
LOCAL = Path(os.environ.get("TIMEBRIDGE_LOCAL_DIR") or ROOT / ".local")  # the playground's files
STATE = LOCAL / "services.json"
#: The ports of local.settings.json.example (and of Azurite's own defaults).
FIXED_PORTS = {"blob": 10000, "queue": 10001, "table": 10002, "smartapi": 8791, "tictac": 8792}
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
#: Azurite's documented, public development account (not a secret; never used in Azure).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: Set (to any text) by ``./scripts/test --unit``: the unit tests run with no service, so starting one
#: there is refused — a test that needs Azurite or a sandbox is an integration test (docs/design.md, "Tests").
NO_SERVICES = "TIMEBRIDGE_NO_SERVICES"


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


def _refuse_without_services(what: str) -> None:
    if os.environ.get(NO_SERVICES):
        raise RuntimeError(f"{what} is not started: {NO_SERVICES} is set (a unit test run); a test that needs "
                           "it is an integration test")


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
    _refuse_without_services("Azurite")
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
    _refuse_without_services(what)
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


def _connection(blob: int, queue: int, table: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};")


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def up(ports: dict[str, int] | None = None) -> dict[str, str]:
    """Start the services on fixed ports and leave them running (see the module docstring)."""
    from sandbox.smartapi import DEFAULT_API_KEY, DEFAULT_CUSTOMER_KEY
    from sandbox.tictac import API, DEFAULT_API_CODE

    _refuse_without_services("the local playground")
    ports = ports or FIXED_PORTS
    if STATE.exists():
        return dict(json.loads(STATE.read_text())["env"])
    taken = [f"{name} {port}" for name, port in ports.items() if _in_use(port)]
    if taken:
        raise RuntimeError(f"ports in use: {', '.join(taken)} — stop what uses them (or `python -m tools.services "
                           "down`), then try again")
    if not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` in the project folder (scripts/bootstrap does)")
    data = LOCAL / "azurite"
    data.mkdir(parents=True, exist_ok=True)
    logs = {name: open(LOCAL / f"{name}.log", "ab") for name in ("azurite", "smartapi", "tictac")}  # noqa: SIM115
    started = {
        "azurite": subprocess.Popen(
            [str(AZURITE), "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--location", str(data),
             "--blobHost", "127.0.0.1", "--blobPort", str(ports["blob"]), "--queueHost", "127.0.0.1",
             "--queuePort", str(ports["queue"]), "--tableHost", "127.0.0.1", "--tablePort", str(ports["table"])],
            stdout=logs["azurite"], stderr=subprocess.STDOUT, cwd=LOCAL, start_new_session=True),
        "smartapi": subprocess.Popen([sys.executable, "-m", "sandbox.smartapi", "--port", str(ports["smartapi"])],
                                     stdout=logs["smartapi"], stderr=subprocess.STDOUT, cwd=ROOT,
                                     start_new_session=True),
        "tictac": subprocess.Popen([sys.executable, "-m", "sandbox.tictac", "--port", str(ports["tictac"])],
                                   stdout=logs["tictac"], stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True),
    }
    for log in logs.values():
        log.close()
    for name, port_names in (("azurite", ("blob", "queue", "table")), ("smartapi", ("smartapi",)),
                             ("tictac", ("tictac",))):
        for port_name in port_names:
            _wait_for_port(ports[port_name], started[name], name)
    connection = _connection(ports["blob"], ports["queue"], ports["table"])
    smartapi, tictac = f"http://127.0.0.1:{ports['smartapi']}", f"http://127.0.0.1:{ports['tictac']}"
    env = {"IntegrationStorage": connection, "AzureWebJobsStorage": connection, "SMARTTID_BASE_URL": smartapi,
           "SMARTTID_SANDBOX_URL": smartapi, "SMARTTID_API_KEY": DEFAULT_API_KEY,
           "SMARTTID_CUSTOMER_KEY": DEFAULT_CUSTOMER_KEY, "TICTAC_BASE_URL": tictac + API,
           "TICTAC_SANDBOX_URL": tictac, "TICTAC_API_CODE": DEFAULT_API_CODE}
    STATE.write_text(json.dumps({"pids": {name: p.pid for name, p in started.items()}, "env": env}, indent=2))
    _write_local_settings(env)
    return env


def _write_local_settings(env: dict[str, str]) -> None:
    """``local.settings.json`` from the example, pointed at the running services (Core Tools reads it)."""
    settings = json.loads((ROOT / "local.settings.json.example").read_text())
    for name in ("IntegrationStorage", "AzureWebJobsStorage", "SMARTTID_BASE_URL", "SMARTTID_API_KEY",
                 "SMARTTID_CUSTOMER_KEY", "TICTAC_BASE_URL", "TICTAC_API_CODE"):
        settings["Values"][name] = env[name]
    (LOCAL.parent if "TIMEBRIDGE_LOCAL_DIR" in os.environ else ROOT).joinpath("local.settings.json").write_text(
        json.dumps(settings, indent=2) + "\n")


def down() -> bool:
    """Stop the services ``up`` started (their Azurite data stays in ``.local/azurite``)."""
    if not STATE.exists():
        return False
    pids = list(json.loads(STATE.read_text())["pids"].values())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGINT)  # Azurite stops cleanly on SIGINT
    for pid in pids:  # gone before this returns (a SIGKILL after 15 s)
        for _ in range(150):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    STATE.unlink()
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="start the services, run a command, stop the services")
    run.add_argument("command", nargs=argparse.REMAINDER)
    start = sub.add_parser("up", help="start the services on the fixed ports and leave them running")
    start.add_argument("--ports", help="blob,queue,table,smartapi,tictac instead of 10000,10001,10002,8791,8792")
    sub.add_parser("env", help="the running services' settings as shell export lines")
    sub.add_parser("down", help="stop the services `up` started")
    args = parser.parse_args()
    if args.verb == "up":
        try:
            env = up(dict(zip(FIXED_PORTS, map(int, args.ports.split(",")), strict=True)) if args.ports else None)
        except RuntimeError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 3
        print(f"local services are running: Azurite (storage) {env['IntegrationStorage'].split('BlobEndpoint=')[1]}"
              f" SmartAPI sandbox {env['SMARTTID_BASE_URL']}, Tic-Tac sandbox {env['TICTAC_BASE_URL']}; "
              "local.settings.json written")
        return 0
    if args.verb == "env":
        if not STATE.exists():
            print("Error: no local services are running. What to do: python -m tools.services up", file=sys.stderr)
            return 3
        for name, value in json.loads(STATE.read_text())["env"].items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.verb == "down":
        print("local services stopped" if down() else "no local services were running")
        return 0
    command = [part for part in args.command if part != "--"] or [sys.executable, "-m", "pytest"]
    with local_services() as env:
        print("local services: Azurite and the SmartAPI sandbox at " + env["SMARTTID_BASE_URL"], flush=True)
        print("local services: the Tic-Tac sandbox at " + env["TICTAC_BASE_URL"], flush=True)
        return subprocess.call(command, env={**os.environ, **env}, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
