"""The rolling 24-hour call budget of a target with a daily call limit (Tic-Tac: 500 per 24 hours,
TT:71), shared by every function instance through one Azure Table entity.

TimeBridge allows itself ``TICTAC_DAILY_CALL_BUDGET`` calls (default 400 of the 500: the API code
may be shared with other tools, and how Tic-Tac counts is unknown). A plan reserves its calls
*before* it writes anything (:meth:`CallBudget.reserve`), makes them, then hands back what it did
not use (:meth:`CallBudget.release_unused`). A 429 blocks every instance until its Retry-After
(:meth:`CallBudget.block_until`).

Storage: one entity (PartitionKey ``budget``, RowKey the budget id — for Tic-Tac
``tictac-<first 12 hex of SHA-256 of the API code>``, never the code) in a table of the storage
account (proposed setting ``BUDGET_TABLE``, default ``callbudget``), with

* ``Buckets`` — JSON ``{minute: calls}``: calls made, per UTC minute (epoch seconds // 60), only
  minutes with calls and only the last 24 hours. A call is booked in the minute its reservation
  was released (or expired), never earlier than it can have happened, so it leaves the window no
  sooner than it leaves Tic-Tac's. At most ``limit`` minutes hold calls (each holds at least one),
  and never more than 1,440: the property stays far below Table's 64 KiB.
* ``Reservations`` — JSON ``[{"id", "n", "expires"}]``: calls granted but not yet accounted for.
  They count in full until released; an expired one counts as used in full (its calls may have
  happened) and becomes a bucket at its expiry.
* ``BlockedUntil`` — epoch seconds before which nothing is granted (after a 429).
* ``Limit`` — the budget used at the last write (for people reading the table).

Why the budget is never exceeded: every grant is a read-check-write of this one entity, and the
write is conditional on the ETag read (``If-Match``); when another instance wrote in between, the
write fails with 412 and the whole read-check-write is repeated on the fresh state. So each grant
is checked against every grant committed before it: ``calls in the last 24 h + open reservations +
n <= limit`` holds after every successful write. The first write creates the entity
(``create_entity`` fails if another instance created it first, and is then retried as well).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import SecretStr

from shared.errors import AllowanceExceededError, BudgetBusyError, CallLimitReachedError
from shared.platform.config import Settings
from shared.platform.storage import table_service

log = logging.getLogger(__name__)

DEFAULT_TABLE = "callbudget"
DEFAULT_DAILY_CALL_BUDGET = 400
PARTITION = "budget"
WINDOW = timedelta(hours=24)
#: How long a reservation holds its calls when it is never released (a crashed instance).
DEFAULT_RESERVATION_TTL = timedelta(minutes=30)
#: Concurrent writers: how often one grant is retried after a 412, with a short random pause.
DEFAULT_WRITE_ATTEMPTS = 50


@dataclass(frozen=True)
class Reservation:
    """Calls granted to one plan; give back what it did not use with ``release_unused``."""

    id: str
    calls: int
    expires: datetime


class Allowance:
    """The calls of one reservation (and of any added to it with :meth:`add`), counted as they are
    made; the one too many is refused before it is sent. Pass :meth:`take` to a client's
    ``before_call`` hook."""

    def __init__(self, reservation: Reservation) -> None:
        self.reservation = reservation
        self.extra: list[Reservation] = []
        self.made = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return self.reservation.calls + sum(extra.calls for extra in self.extra)

    def add(self, reservation: Reservation) -> None:
        """More calls for the same plan (e.g. a look-up after a write whose answer was lost)."""
        with self._lock:
            self.extra.append(reservation)

    def take(self, method: str, path: str) -> None:
        with self._lock:
            if self.made >= self.calls:
                raise AllowanceExceededError(f"{method} {path} would be call {self.made + 1} of a plan that reserved "
                                        f"{self.calls}")
            self.made += 1

    @property
    def remaining(self) -> int:
        return self.calls - self.made

    def used_per_reservation(self) -> list[tuple[Reservation, int]]:
        """The calls made, charged to the first reservation first: what to release for each."""
        left, shares = self.made, []
        for reservation in (self.reservation, *self.extra):
            used = min(left, reservation.calls)
            shares.append((reservation, used))
            left -= used
        if left:  # more than reserved: booked on the first one
            shares[0] = (shares[0][0], shares[0][1] + left)
        return shares


def budget_id(target: str, api_code: SecretStr) -> str:
    """The entity's RowKey: the target plus a hash of the API code (one budget per code)."""
    digest = hashlib.sha256(api_code.get_secret_value().encode()).hexdigest()[:12]
    return f"{target}-{digest}"


@dataclass
class _State:
    buckets: dict[int, int]
    reservations: list[dict[str, Any]]
    blocked_until: float
    etag: str | None  # None: the entity does not exist yet

    def used(self) -> int:
        return sum(self.buckets.values())

    def reserved(self) -> int:
        return sum(int(r["n"]) for r in self.reservations)


def _minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


class CallBudget:
    """A rolling 24-hour call budget in one Table entity (see the module docstring)."""

    def __init__(
        self,
        table: TableClient,
        budget_key: str,
        limit: int = DEFAULT_DAILY_CALL_BUDGET,
        *,
        clock: Callable[[], datetime] | None = None,
        reservation_ttl: timedelta = DEFAULT_RESERVATION_TTL,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
    ) -> None:
        if limit < 0:
            raise ValueError("the call budget cannot be negative")
        self.table = table
        self.key = budget_key
        self.limit = limit
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ttl = reservation_ttl
        self._attempts = write_attempts

    @classmethod
    def connect(cls, settings: Settings, budget_key: str, limit: int = DEFAULT_DAILY_CALL_BUDGET, *,
                table_name: str = DEFAULT_TABLE, **options: Any) -> CallBudget:
        table = table_service(settings).get_table_client(table_name)  # infra/ creates the table
        return cls(table, budget_key, limit, **options)

    # --- public ---------------------------------------------------------------------------------
    def reserve(self, calls: int) -> Reservation | None:
        """Grant ``calls`` calls, or None when they do not fit in the last 24 hours' budget (or a
        429 block is in force). Nothing is granted partly: ask for less to use what is left."""
        if calls < 0:
            raise ValueError("cannot reserve a negative number of calls")
        granted: list[Reservation] = []

        def change(state: _State, now: datetime) -> bool:
            granted.clear()  # a grant whose write lost the race is no grant
            if state.blocked_until > now.timestamp() or state.used() + state.reserved() + calls > self.limit:
                return False
            reservation = Reservation(uuid.uuid4().hex, calls, now + self._ttl)
            state.reservations.append({"id": reservation.id, "n": calls, "expires": reservation.expires.timestamp()})
            granted.append(reservation)
            return True

        self._update(change)
        return granted[-1] if granted else None

    def release_unused(self, reservation: Reservation, used: int) -> None:
        """Account for a reservation: ``used`` calls were made (booked now), the rest is free again.
        More than reserved is booked as made. An expired reservation stays counted in full."""
        if used < 0:
            raise ValueError("used cannot be negative")

        def change(state: _State, now: datetime) -> bool:
            match = [r for r in state.reservations if r["id"] == reservation.id]
            if not match:
                if used > reservation.calls:  # expired and booked in full, yet more were made
                    self._book(state, now, used - reservation.calls)
                    return True
                return False
            state.reservations.remove(match[0])
            self._book(state, now, used)
            return True

        self._update(change)

    @contextmanager
    def spend(self, reservation: Reservation) -> Iterator[Allowance]:
        """Make the reserved calls: yields the :class:`Allowance` to count them; on leaving, the
        calls not made are released; a :class:`CallLimitReachedError` on the way blocks the budget until
        its ``until`` (and is raised on)."""
        allowance = Allowance(reservation)
        try:
            yield allowance
        except CallLimitReachedError as exc:
            self.block_until(exc.until)
            raise
        finally:
            self.release(allowance)

    def release(self, allowance: Allowance) -> None:
        """:meth:`release_unused` for every reservation of ``allowance``."""
        for reservation, used in allowance.used_per_reservation():
            self.release_unused(reservation, used)

    def block_until(self, moment: datetime) -> None:
        """Grant nothing before ``moment`` (Tic-Tac's 429 and its Retry-After): every instance sees it."""

        def change(state: _State, now: datetime) -> bool:
            if moment.timestamp() <= state.blocked_until:
                return False
            state.blocked_until = moment.timestamp()
            return True

        self._update(change)
        log.warning("The call budget %s is blocked until %s", self.key, moment.isoformat(timespec="seconds"))

    def remaining(self) -> int:
        """Calls that could be granted now (0 while blocked)."""
        now = self._clock()
        state = self._pruned(self._read(), now)
        if state.blocked_until > now.timestamp():
            return 0
        return max(0, self.limit - state.used() - state.reserved())

    def used(self) -> int:
        """Calls made in the last 24 hours plus those reserved and not yet released."""
        state = self._pruned(self._read(), self._clock())
        return state.used() + state.reserved()

    def next_free_at(self, calls: int = 1) -> datetime | None:
        """The earliest moment at which ``calls`` calls fit (now, if they fit now); None when they
        never can (more than the whole budget). Open reservations are assumed to be used in full
        and to leave the window 24 hours after they expire."""
        if calls > self.limit:
            return None
        now = self._clock()
        state = self._pruned(self._read(), now)
        ages: list[tuple[float, int]] = [((minute + 1) * 60 + WINDOW.total_seconds(), n)
                                        for minute, n in state.buckets.items()]
        ages += [(float(r["expires"]) + WINDOW.total_seconds(), int(r["n"])) for r in state.reservations]
        excess = state.used() + state.reserved() + calls - self.limit
        moment = now.timestamp()
        for frees_at, n in sorted(ages):
            if excess <= 0:
                break
            excess -= n
            moment = max(moment, frees_at)
        moment = max(moment, state.blocked_until)
        return datetime.fromtimestamp(moment, UTC)

    # --- storage --------------------------------------------------------------------------------
    def _book(self, state: _State, now: datetime, calls: int) -> None:
        if calls:
            minute = _minute(now)
            state.buckets[minute] = state.buckets.get(minute, 0) + calls

    def _pruned(self, state: _State, now: datetime) -> _State:
        """Expired reservations become calls at their expiry; calls older than 24 h leave."""
        for reservation in [r for r in state.reservations if float(r["expires"]) <= now.timestamp()]:
            state.reservations.remove(reservation)
            expired = datetime.fromtimestamp(float(reservation["expires"]), UTC)
            self._book(state, expired, int(reservation["n"]))
        # A call booked in minute m happened at the latest at the end of that minute: it leaves the
        # window at (m + 1) * 60 s + 24 h, never before Tic-Tac's window lets it go (next_free_at agrees).
        horizon = now.timestamp() - WINDOW.total_seconds()
        state.buckets = {minute: n for minute, n in state.buckets.items() if (minute + 1) * 60 > horizon}
        return state

    def _read(self) -> _State:
        try:
            entity = self.table.get_entity(PARTITION, self.key)
        except ResourceNotFoundError:
            return _State({}, [], 0.0, None)
        buckets = {int(minute): int(n) for minute, n in json.loads(entity.get("Buckets") or "{}").items()}
        return _State(buckets, list(json.loads(entity.get("Reservations") or "[]")),
                      float(entity.get("BlockedUntil") or 0.0), entity.metadata["etag"])

    def _update(self, change: Callable[[_State, datetime], bool]) -> None:
        """Read, apply ``change`` (False: nothing to write), write on the ETag read; repeat on 412."""
        for attempt in range(self._attempts):
            now = self._clock()
            state = self._pruned(self._read(), now)
            if not change(state, now):
                return
            entity = {
                "PartitionKey": PARTITION,
                "RowKey": self.key,
                "Limit": self.limit,
                "Buckets": json.dumps({str(m): n for m, n in sorted(state.buckets.items())}, separators=(",", ":")),
                "Reservations": json.dumps(state.reservations, separators=(",", ":")),
                "BlockedUntil": state.blocked_until,
                "UpdatedAt": now.isoformat(timespec="seconds"),
            }
            try:
                if state.etag is None:
                    self.table.create_entity(entity)
                else:
                    self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=state.etag,
                                             match_condition=MatchConditions.IfNotModified)
                return
            except (ResourceModifiedError, ResourceExistsError):
                time.sleep(random.uniform(0, 0.005 * min(attempt + 1, 20)))  # another instance wrote first
        raise BudgetBusyError(f"the call budget {self.key} kept changing under this instance; try again shortly")
