"""The shared rolling 24-hour call budget on Azurite: limits, releases, 429 blocks, racing threads."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient
from pydantic import SecretStr

from shared.platform.config import Settings
from shared.platform.storage import ensure_tables, table_service
from shared.targets.budget import PARTITION, CallBudget, budget_id

START = datetime(2026, 11, 23, 6, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def table(services: dict[str, str]) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(services["IntegrationStorage"])
    client = service.create_table(f"budget{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_table()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(table: TableClient, clock: Clock, limit: int = 10, **options: object) -> CallBudget:
    return CallBudget(table, "tictac-test", limit, clock=clock, **options)


def test_reservations_never_exceed_the_budget(table: TableClient, clock: Clock) -> None:
    budget = make(table, clock)
    assert budget.remaining() == 10
    first = budget.reserve(6)
    assert first is not None and first.calls == 6
    assert budget.reserve(5) is None  # nothing is granted partly
    assert budget.remaining() == 4
    second = budget.reserve(4)
    assert second is not None
    assert budget.reserve(1) is None and budget.remaining() == 0
    budget.release_unused(first, used=2)  # 4 of the 6 come back
    assert budget.remaining() == 4 and budget.used() == 6
    assert budget.reserve(0) is not None


def test_the_window_rolls_after_24_hours(table: TableClient, clock: Clock) -> None:
    budget = make(table, clock)
    early = budget.reserve(7)
    budget.release_unused(early, used=7)
    clock.advance(hours=5)
    late = budget.reserve(3)
    budget.release_unused(late, used=3)
    assert budget.reserve(1) is None
    assert budget.next_free_at(1) == START.replace(second=0) + timedelta(days=1, minutes=1)
    assert budget.next_free_at(8) == START.replace(second=0) + timedelta(hours=29, minutes=1)
    assert budget.next_free_at(11) is None
    clock.advance(hours=19, minutes=1)
    assert budget.remaining() == 7
    assert budget.next_free_at(7) == clock.now
    clock.advance(hours=5)
    assert budget.remaining() == 10


def test_a_reservation_never_released_counts_in_full_until_it_ages_out(table: TableClient, clock: Clock) -> None:
    budget = make(table, clock, reservation_ttl=timedelta(minutes=30))
    lost = budget.reserve(8)  # the instance crashes: never released
    assert lost is not None
    clock.advance(hours=2)
    assert budget.remaining() == 2
    budget.release_unused(lost, used=1)  # too late: it stays counted as 8
    assert budget.remaining() == 2
    clock.advance(hours=22, minutes=31)
    assert budget.remaining() == 10


def test_a_429_blocks_every_instance_until_its_retry_after(table: TableClient, clock: Clock) -> None:
    one, other = make(table, clock), make(table, clock)
    one.block_until(clock.now + timedelta(seconds=3600))
    assert other.reserve(1) is None and other.remaining() == 0
    assert other.next_free_at(1) == clock.now + timedelta(seconds=3600)
    one.block_until(clock.now + timedelta(seconds=60))  # an earlier moment never shortens a block
    clock.advance(seconds=3601)
    assert other.reserve(1) is not None


def test_the_entity_stays_compact(table: TableClient, clock: Clock) -> None:
    budget = make(table, clock, limit=1000)
    for _ in range(200):  # one call every 10 minutes for 33 hours
        reservation = budget.reserve(1)
        assert reservation is not None
        budget.release_unused(reservation, used=1)
        clock.advance(minutes=10)
    entity = table.get_entity(PARTITION, "tictac-test")
    buckets = json.loads(entity["Buckets"])
    assert 143 <= len(buckets) <= 145  # only the minutes of the last 24 hours
    assert sum(buckets.values()) == len(buckets)
    assert budget.used() == len(buckets) - 1  # the clock moved on 10 minutes after the last write
    assert len(entity["Buckets"]) < 3_000 and entity["Reservations"] == "[]"


def test_budget_ids_hide_the_api_code() -> None:
    code = SecretStr("eyJhbGciOiJIUzI1NiJ9.payload.signature")
    key = budget_id("tictac", code)
    assert key.startswith("tictac-") and len(key) == len("tictac-") + 12
    assert "payload" not in key and key == budget_id("tictac", SecretStr(code.get_secret_value()))


def test_threads_racing_for_the_budget_never_exceed_it(table: TableClient, services: dict[str, str]) -> None:
    """Eight instances (each with its own table client) grab calls at once: exactly the budget is
    granted, never more."""
    limit = 40
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def instance(size: int) -> None:
        own = TableServiceClient.from_connection_string(services["IntegrationStorage"]).get_table_client(
            table.table_name)
        budget = CallBudget(own, "tictac-race", limit, write_attempts=1000)
        start.wait()
        while True:
            reservation = budget.reserve(size)
            if reservation is None:
                if size == 1 or budget.remaining() == 0:
                    return
                size = 1
                continue
            with lock:
                granted.append(reservation.calls)

    threads = [threading.Thread(target=instance, args=(1 + i % 2,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == limit
    final = CallBudget(table, "tictac-race", limit)
    assert final.used() == limit and final.remaining() == 0
    entity = table.get_entity(PARTITION, "tictac-race")
    assert sum(r["n"] for r in json.loads(entity["Reservations"])) == limit


def test_connect_uses_the_table_infra_created(services: dict[str, str]) -> None:
    name = f"budget{uuid.uuid4().hex[:12]}"
    settings = Settings(IntegrationStorage=services["IntegrationStorage"])
    ensure_tables(table_service(settings), [name])  # infra/ in Azure; connect never creates it (tests/test_tables.py)
    budget = CallBudget.connect(settings, "tictac-x", 5, table_name=name)
    try:
        assert budget.reserve(5) is not None and budget.reserve(1) is None
    finally:
        budget.table.delete_table()


def test_a_call_never_leaves_the_window_before_tictac_lets_it_go(table: TableClient, clock: Clock) -> None:
    """Calls booked in minute m happened at the latest at the end of it: they leave at (m + 1) min + 24 h,
    never up to 59 s early (a file imported just after the boundary spent a second budget)."""
    budget = make(table, clock, limit=12)
    clock.now = datetime(2026, 11, 23, 6, 0, 59, 500_000, tzinfo=UTC)  # the last second of minute 06:00
    first = budget.reserve(12)
    assert first is not None
    budget.release_unused(first, used=12)
    for seconds in (86_400 - 59, 86_400 - 30, 86_400 - 1):  # 24 h after the minute began, up to its end
        clock.now = datetime(2026, 11, 23, 6, 0, tzinfo=UTC) + timedelta(seconds=seconds)
        assert budget.remaining() == 0, clock.now
        assert budget.reserve(1) is None
    assert budget.next_free_at(12) == datetime(2026, 11, 24, 6, 1, tzinfo=UTC)
    clock.now = datetime(2026, 11, 24, 6, 1, tzinfo=UTC)  # the minute after: the whole budget is free again
    assert budget.remaining() == 12


def test_extra_reservations_of_one_plan_are_released_together(table: TableClient, clock: Clock) -> None:
    from shared.targets.budget import Allowance

    budget = make(table, clock, limit=10)
    main, extra = budget.reserve(4), budget.reserve(2)
    assert main is not None and extra is not None
    allowance = Allowance(main)
    allowance.add(extra)
    for _ in range(5):
        allowance.take("GET", "/v1/users")
    budget.release(allowance)
    assert budget.used() == 5 and budget.remaining() == 5
