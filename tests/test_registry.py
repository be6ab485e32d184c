"""Targets register themselves: the settings, the factory and the start-up check name none."""

from __future__ import annotations

import logging

import pytest

from shared.errors import ConfigurationError
from shared.platform import telemetry
from shared.platform.config import load_settings, report_configuration_problems
from shared.targets.factory import connector_factory
from shared.targets.registry import LedgerKind, check_target, known_targets, target_spec
from shared.targets.smarttid import SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY
from shared.targets.tictac import TICTAC_API_CODE


def test_every_target_package_is_found_and_says_what_it_needs() -> None:
    assert known_targets() == ("smarttid", "tictac")
    smarttid, tictac = target_spec("smarttid"), target_spec("tictac")
    assert (smarttid.display_name, smarttid.secrets, smarttid.call_limited, smarttid.ledger) == (
        "SmartTID", (SMARTTID_API_KEY, SMARTTID_CUSTOMER_KEY), False, LedgerKind.TRANSFERRED_FLAG)
    assert (tictac.display_name, tictac.secrets, tictac.call_limited, tictac.ledger) == (
        "Tic-Tac", (TICTAC_API_CODE,), True, LedgerKind.SENT_LEDGER)


def test_an_unknown_target_is_refused_naming_the_known_ones(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", "visma")
    settings = load_settings()  # a well-formed name: the registry decides whether it exists
    with pytest.raises(ConfigurationError, match=r"TARGET_SYSTEM = 'visma'.*smarttid, tictac"):
        connector_factory(settings)
    with caplog.at_level(logging.ERROR):
        refusal = report_configuration_problems(check_target)
    assert refusal is not None and "visma" in str(refusal)
    assert [r.getMessage().startswith(telemetry.STARTUP_REFUSAL) for r in caplog.records if r.levelno >= logging.ERROR] \
        == [True]


@pytest.mark.parametrize("name", ["Tic-Tac", "../tictac", "smarttid.connector", ""])
def test_a_target_name_that_is_no_package_name_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                                         name: str) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", name)
    with pytest.raises(ConfigurationError, match="TARGET_SYSTEM"):
        load_settings()
