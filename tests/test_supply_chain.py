"""Supply chain: the deployed set has a hashed lock (requirements.lock, scripts/lock_requirements)
that pins exactly requirements.txt's versions, hashes every package, and is what the tests run on."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s\\]+)", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        pin = PIN.match(block)
        if pin:
            entries[canonical(pin.group(1))] = (pin.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def test_the_lock_pins_every_deployed_requirement_at_its_version_with_hashes() -> None:
    pins = {canonical(name): version for name, version in PIN.findall((ROOT / "requirements.txt").read_text())}
    entries = lock_entries()
    assert pins and {name: entries[name][0] for name in pins} == pins
    assert len(entries) > len(pins)  # the transitive packages are locked too
    assert all(hashes for _, hashes in entries.values()), [name for name, (_, h) in entries.items() if not h]
    assert "pip install --require-hashes -r requirements.lock" in (ROOT / "requirements.lock").read_text()


def test_the_tests_run_on_the_locked_versions() -> None:
    installed = {}
    for name in lock_entries():
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a package for another platform or Python (the lock is for the deployment)
    locked = {name: version for name, (version, _) in lock_entries().items() if name in installed}
    assert installed == locked
    assert len(installed) >= 0.8 * len(lock_entries())
