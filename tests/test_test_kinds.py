"""The unit / integration marking of tests/conftest.py (docs/design.md, "Tests"): by the fixtures a
test uses, refused where a hand-made mark contradicts them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import pytest_collection_modifyitems


@dataclass
class Item:
    """What the hook reads of a collected test."""

    nodeid: str
    fixturenames: list[str]
    marks: list[Any] = field(default_factory=list)

    def iter_markers(self) -> list[Any]:
        return [getattr(mark, "mark", mark) for mark in self.marks]

    def add_marker(self, mark: Any) -> None:
        self.marks.append(mark)

    def kinds(self) -> list[str]:
        return [mark.name for mark in self.iter_markers()]


def mark(*items: Item) -> None:
    pytest_collection_modifyitems(None, list(items))  # type: ignore[arg-type]


def test_a_test_is_integration_by_the_service_fixtures_it_uses_and_unit_otherwise() -> None:
    storage = Item("t::storage", ["storage", "settings", "app_env", "services", "monkeypatch"])
    tictac = Item("t::tictac", ["tictac", "tictac_services"])
    plain = Item("t::plain", ["tmp_path", "monkeypatch"])
    mark(storage, tictac, plain)
    assert (storage.kinds(), tictac.kinds(), plain.kinds()) == (["integration"], ["integration"], ["unit"])


def test_an_explicit_integration_mark_is_kept() -> None:
    starts_its_own = Item("t::own", ["tmp_path"], [pytest.mark.integration])
    mark(starts_its_own)
    assert starts_its_own.kinds() == ["integration"]


@pytest.mark.parametrize(("fixtures", "marks", "words"), [
    (["sandbox", "services"], [pytest.mark.unit], "t::wrong is marked unit but uses services"),
    (["tmp_path"], [pytest.mark.unit, pytest.mark.integration], "t::wrong is marked both unit and integration"),
])
def test_a_mark_that_contradicts_the_fixtures_stops_the_run(fixtures: list[str], marks: list[Any], words: str) -> None:
    with pytest.raises(pytest.UsageError, match=words):
        mark(Item("t::wrong", fixtures, list(marks)))


def test_this_suite_marks_this_file_unit(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None
