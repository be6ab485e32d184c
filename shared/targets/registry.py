"""Every target TimeBridge can talk to, each a package under ``shared/targets/`` that registers itself.

A target package's ``__init__`` builds one :class:`TargetSpec` and calls :func:`register` (importing
nothing heavy: its builder imports the client when a connector is first built). A target's own
app settings are a :class:`TargetSettings` model in its package. The settings (``TARGET_SYSTEM`` is the
package's name), the secrets, the factory, the export run and the intake
ask this module; none of them names a target, so a new target is a package and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError
from shared.platform.config import Settings, TargetSettings, load_settings, read_settings, setting_names

if TYPE_CHECKING:
    from shared.platform.secrets import SecretProvider, SecretSpec
    from shared.targets.base import Connector


class LedgerKind(StrEnum):
    """How the export learns what it has already exported from a target."""

    #: The target keeps a flag per entry (SmartTID's ``Transfered``): read the unflagged, flag what was written.
    TRANSFERRED_FLAG = "transferred-flag"
    #: The target keeps no flag: TimeBridge's own table of what it sent, with reversal lines for corrections.
    SENT_LEDGER = "sent-ledger"


def _no_tables(settings: Settings) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class TargetSpec:
    #: The ``TARGET_SYSTEM`` value: the package's name under ``shared/targets/``.
    name: str
    #: The target's name as administrators know it, in every message and report.
    display_name: str
    #: The secrets a connector needs (all read before any request).
    secrets: tuple[SecretSpec, ...]
    #: Builds a connector from the settings, the target's own settings (an instance of ``settings``) and
    #: the secrets.
    build: Callable[[Settings, Any, SecretProvider], Connector]
    #: The target's own app settings (read only when ``TARGET_SYSTEM`` names it).
    settings: type[TargetSettings] = TargetSettings
    #: The target allows a number of API calls per day: lines that do not fit wait for the next day.
    call_limited: bool = False
    #: The storage tables the target keeps its state in (created by infra/, checked by the CLI's doctor).
    tables: Callable[[Settings], tuple[str, ...]] = field(default=_no_tables)
    #: How the export knows what it exported before.
    ledger: LedgerKind = LedgerKind.TRANSFERRED_FLAG


_SPECS: dict[str, TargetSpec] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def register(spec: TargetSpec) -> TargetSpec:
    """Called by a target package's ``__init__``."""
    if not _NAME.match(spec.name):
        raise ValueError(f"a target's name is its package's name in lower case, not {spec.name!r}")
    _SPECS[spec.name] = spec
    return spec


def known_targets() -> tuple[str, ...]:
    """The target packages under ``shared/targets/`` (found without importing them)."""
    import shared.targets

    return tuple(sorted(info.name for info in pkgutil.iter_modules(shared.targets.__path__) if info.ispkg))


def target_spec(name: str) -> TargetSpec:
    """The target called ``name`` (``TARGET_SYSTEM``); ConfigurationError when there is none."""
    spec = _SPECS.get(name)
    if spec is not None:
        return spec
    known = known_targets()
    if name not in known:
        raise ConfigurationError(
            f"app setting TARGET_SYSTEM = {name!r}: TimeBridge knows no such target system; set it to one of "
            f"{', '.join(known)}"
        )
    importlib.import_module(f"shared.targets.{name}")
    if name not in _SPECS:  # pragma: no cover - a package that forgot to register
        raise ConfigurationError(f"the target package shared/targets/{name} does not register a target")
    return _SPECS[name]


def target_settings(settings: Settings) -> TargetSettings:
    """The own settings of the target ``TARGET_SYSTEM`` names; ConfigurationError names every problem."""
    return read_settings(target_spec(settings.target_system).settings)


def all_setting_names() -> set[str]:
    """Every app-setting name TimeBridge reads: its own and every target's (infra and docs list them all)."""
    return setting_names(Settings, *(target_spec(name).settings for name in known_targets()))


def load_all_settings() -> Settings:
    """TimeBridge's settings, with the target's own checked too (what every invocation reads first: a
    misconfiguration fails it at once, before anything is read or written)."""
    settings = load_settings()
    check_target(settings)
    return settings


def check_target(settings: Settings) -> None:
    """The start-up check's part for the target: ``TARGET_SYSTEM`` names a known target, and that
    target's own settings are well-formed."""
    target_settings(settings)
