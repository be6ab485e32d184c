"""The one pager (shared/targets/http.py): when a list read page by page is complete, and when not."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import ApiUnavailableError
from shared.targets.http import Pager, SeenIdentities


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"ID": i} for i in ids]


def pager(pages: dict[int, list[dict[str, Any]]], total: int | None = None, **options: Any) -> tuple[Pager, list]:
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        asked.append((offset, limit))
        return pages.get(offset, []), total

    return Pager(fetch, identity=lambda row: row["ID"], target="Target", what="/items", page_size=4,
                 max_pages=5, **options), asked


def test_a_short_page_is_not_the_end_an_empty_one_is() -> None:
    read, asked = pager({0: rows(1, 2), 2: rows(3, 4, 5), 5: []}, first_limit=2)
    assert [row["ID"] for page in read for row in page] == [1, 2, 3, 4, 5]
    assert read.complete is True
    assert asked == [(0, 2), (2, 4), (5, 4)]  # the limit doubles up to the page size


def test_the_second_page_may_ask_for_more_than_twice_the_first() -> None:
    read, asked = pager({0: rows(9), 1: rows(8, 7, 6), 4: rows(5, 4)}, first_limit=1, second_limit=3)
    assert [row["ID"] for page in read for row in page] == [9, 8, 7, 6, 5, 4]
    assert asked == [(0, 1), (1, 3), (4, 4), (6, 4)]  # one row, then three, then doubling up to the page size


def test_the_total_ends_the_read_without_another_call() -> None:
    read, asked = pager({0: rows(1, 2, 3, 4), 4: rows(5)}, total=5)
    assert [row["ID"] for page in read for row in page] == [1, 2, 3, 4, 5]
    assert (read.complete, len(asked)) == (True, 2)


def test_a_strict_list_that_repeats_itself_cannot_be_read() -> None:
    read, _ = pager({0: rows(1, 2, 3, 4), 4: rows(1, 2, 3, 4)})
    with pytest.raises(ApiUnavailableError, match="same records again for /items at offset 4"):
        list(read)
    assert read.complete is False


def test_a_list_that_moves_while_read_ends_incomplete_when_a_page_repeats_the_previous_one() -> None:
    read, _ = pager({0: rows(1, 2, 3, 4), 4: rows(1, 2, 3, 4)}, strict=False)
    assert [row["ID"] for page in read for row in page] == [1, 2, 3, 4]
    assert read.complete is False  # the caller uses what was read and reads again


def test_a_list_that_never_ends_is_an_error_when_strict_and_incomplete_otherwise() -> None:
    endless = {offset: rows(offset + 1, offset + 2, offset + 3, offset + 4) for offset in range(0, 100, 4)}
    with pytest.raises(ApiUnavailableError, match="did not end after 5 pages"):
        list(pager(endless)[0])
    loose, asked = pager(endless, strict=False)
    assert sum(len(page) for page in loose) == 20 and loose.complete is False and len(asked) == 5


def test_enough_ends_a_read_that_has_what_it_needs() -> None:
    read, asked = pager({0: rows(9, 8), 2: rows(7, 6)}, first_limit=2, enough=lambda page: page[-1]["ID"] <= 8)
    assert [row["ID"] for page in read for row in page] == [9, 8]
    assert (read.complete, asked) == (True, [(0, 2)])


def test_a_row_seen_on_an_earlier_page_is_not_handed_on_again_however_long_the_list() -> None:
    pages = {offset: rows(*range(offset + 1, offset + 5)) for offset in range(0, 40, 4)}
    pages[40] = rows(3, 41, 17, 42)  # two rows of earlier pages again, two new ones
    read = Pager(lambda offset, limit: (pages.get(offset, []), None), identity=lambda row: row["ID"],
                 target="Target", what="/items", page_size=4, max_pages=20)
    assert [row["ID"] for page in read for row in page] == [*range(1, 41), 41, 42]
    assert read.complete is True


def test_the_seen_identities_hold_exactly_what_was_added() -> None:
    seen = SeenIdentities()
    ids = [n * 7919 for n in range(20_000)] + [-1, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
    for identity in ids:
        seen.add(identity)
    seen.add('{"Name": "no id"}')
    assert all(identity in seen for identity in ids)  # grown many times: every id found
    assert '{"Name": "no id"}' in seen and "7919" not in seen  # an id's text is not the id
    assert not any(n * 7919 + 1 in seen for n in range(20_000))
    assert -2 not in seen and 2**63 + 1 not in seen and -(2**63) + 1 not in seen
    assert False in seen and True not in seen  # as in a set: False is 0 (added: 0 * 7919), True is 1 (not)
    seen.add(7919)  # again: held once
    assert len(seen) == len(ids) + 1
    assert seen.nbytes() < 30 * len(ids)  # no Python object per id
