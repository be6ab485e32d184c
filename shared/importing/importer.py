"""Plan and apply an import: compare the file's records with the target system, write the difference.

* Plan reads the current state once (every employee and job; the operations only of the jobs in
  the file) and decides per record (:func:`shared.importing.plan.plan`, a pure function): create,
  update the changed fields, leave unchanged, or reject. Unchanged records cost no write call.
* Apply writes with bounded concurrency: employees and jobs first, then the operations, planned
  against the jobs as they are after the job writes (a job created from a template already has
  the template's operations). An operation whose job failed is rejected with that reason.
* A dry run never applies: each planned write ends with the outcome it would have
  (:func:`shared.importing.plan.outcomes_of`, the same function that tells a write's outcome).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial

from shared.errors import (
    AllowanceExceededError,
    ApiRejectedError,
    ApiUnavailableError,
    AuthenticationFailedError,
    CallLimitReachedError,
)
from shared.importing.codes import CodeTable
from shared.importing.parsing import ParsedFile
from shared.importing.passes import MASTERS, OPERATIONS, in_memory
from shared.importing.plan import LineStatus as LineStatus
from shared.importing.plan import Outcome as Outcome
from shared.importing.plan import Write, line_error, outcomes_of, plan, stored_key
from shared.importing.stored import StoredRecords
from shared.platform.memory import keep_large_blocks_apart, release_freed_memory
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.record import LineError, Record, fold_key
from shared.records.values import Value
from shared.targets.base import Connector, RemoteRecord

log = logging.getLogger(__name__)

#: How many lines the receipt names one by one when their codes differ from the stored ones in case only.
MAX_SPELLING_NOTES = 20


class StopReason(StrEnum):
    """Why lines wait instead of being written."""

    #: TimeBridge's share of the target's daily calls had no room
    BUDGET = "budget"
    #: the target refused a call for its own limit (429): nothing more is sent
    LIMIT = "limit"
    #: failing calls used up the calls reserved for them
    RETRIES = "retries"
    #: the import reached its time limit: nothing more is sent
    TIME = "time"


class Stops:
    """Every reason the import stopped writing, in one place (thread-safe): the first one is the
    receipt's ``stopped_by``; a limit or the time stops every write not yet sent; ``rest_waits``: a
    stop between batches — every record not yet finished waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: StopReason | None = None
        self._seen: set[StopReason] = set()
        self.rest_waits = False

    def add(self, reason: StopReason) -> bool:
        """Record ``reason``; True the first time it is seen."""
        with self._lock:
            new = reason not in self._seen
            self._seen.add(reason)
            if self.first is None:
                self.first = reason
            return new

    def __contains__(self, reason: object) -> bool:
        return reason in self._seen

    @property
    def halt_writes(self) -> bool:
        """Nothing more is sent: the target's limit was reached, or the time is up."""
        return StopReason.LIMIT in self._seen or StopReason.TIME in self._seen


@dataclass
class ImportResult:
    """What an import did, in counts: memory does not grow with the file (the errors aside)."""

    errors: list[LineError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the target has a call budget (its receipts count deferred lines, also when there are none)
    budgeted: bool = False
    #: lines per status (the rejected ones are counted from the errors)
    counts: Counter[str] = field(default_factory=Counter)
    #: the first line of each line of a deferred record (spans not included), in no particular order
    deferred_lines: list[int] = field(default_factory=list)
    #: deferred records per type (what their calls will cost)
    deferred_types: Counter[RecordType] = field(default_factory=Counter)
    #: one Outcome per record, kept only when asked for (the validate drop zone reports line by line)
    outcomes: list[Outcome] = field(default_factory=list)
    #: why lines wait instead of being written (:class:`StopReason`), every cause and the first
    stops: Stops = field(default_factory=Stops)
    #: calls a resumption of the deferred lines needs before its first write (``deferral.calls_to_start``)
    calls_to_start: int = 0

    @property
    def stopped_by(self) -> str:
        """What made lines wait (the first cause, a :class:`StopReason`); "" when none wait."""
        return self.stops.first or ""

    @property
    def out_of_time(self) -> bool:
        """The import reached its time limit; the lines not finished were deferred."""
        return StopReason.TIME in self.stops

    def line_counts(self) -> dict[str, int]:
        counts = {status.value: self.counts.get(status.value, 0) for status in LineStatus}
        counts[LineStatus.REJECTED.value] = len({error.line for error in self.errors})
        if not self.budgeted and not self.out_of_time and not counts[LineStatus.DEFERRED.value]:
            del counts[LineStatus.DEFERRED.value]
        return counts

    def has_deferred(self) -> bool:
        return bool(self.deferred_lines)


class Importer:
    def __init__(self, connector: Connector, *, concurrency: int = 4, dry_run: bool = False,
                 target_name: str = "SmartTID", deadline: float | None = None,
                 keep_outcomes: bool = False,
                 on_match: Callable[[Record, RemoteRecord], None] | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None) -> None:
        self.connector = connector
        # large blocks (the code table's, a batch's answers) are handed back when freed, not left in the heaps
        keep_large_blocks_apart()
        #: given every outcome as it is decided, instead of keeping them (a dry run of a file read in
        #: passes: its report takes what it needs of each, so memory does not grow with the file)
        self.on_outcome = on_outcome
        #: told of every record matched to a stored one (the matching readiness report)
        self.on_match = on_match
        #: the target's name in every message (the registry's ``display_name``)
        self.target = target_name
        self.concurrency = concurrency
        #: plan only: read the target, decide every line, write nothing (the validate drop zone)
        self.dry_run = dry_run
        #: ``time.monotonic()`` after which nothing more is sent: the lines not finished are deferred
        self.deadline = deadline
        self.keep_outcomes = keep_outcomes or dry_run
        self.result = ImportResult()
        self._lock = threading.Lock()
        self._fatal: str | None = None  # set when further calls are pointless (credentials refused)
        #: the stored records of each type, by (folded) key, read once: the target's own state, held
        #: compactly (the job codes as stored are looked up in it too)
        self._remote: dict[RecordType, StoredRecords] = {}
        #: the stored jobs, when the file's operations need them and its jobs did not (they are not planned)
        self._jobs_for_operations: StoredRecords | None = None
        self._unkeyed: dict[RecordType, list[RemoteRecord]] = {}
        self._fold = connector.codes_case_insensitive
        #: the file's jobs written or unchanged (the usual case): their codes as stored, by folded code,
        #: held compactly (a first import of a million lines has 200,000 of them)
        self._job_codes = CodeTable(fold=self._fold)
        #: the file's jobs deferred or rejected (the exceptions): folded code → (status, line, code as stored)
        self._jobs_waiting: dict[Value, tuple[LineStatus, int, Value]] = {}
        self._respelled = 0
        #: why every record not yet finished is rejected (a read the plan needs failed)
        self._stop: LineError | None = None
        #: the exception behind ``_stop`` (a read the plan needed failed), for callers that report it once
        self.stop_cause: Exception | None = None
        self._done: set[int] = set()  # ids of the records of the current batch that have an outcome
        self._given: dict[RecordType, set[str]] = {}
        self._with_job: set[int] = set()  # ids of operations created in their job's call (inline children)
        #: the stored operations read, per job code (kept only with ``on_match``: the readiness report)
        self._operations_read: dict[str, list[RemoteRecord]] = {}

    def run(self, parsed: ParsedFile) -> ImportResult:
        """Import a file parsed whole (:func:`parse_file`)."""
        return self.run_batches(parsed, in_memory(parsed))

    def run_batches(self, parsed: ParsedFile,
                    batches: Callable[[frozenset[RecordType]], Iterable[list[Record]]]) -> ImportResult:
        """Import the records ``batches`` yields: first every batch of employees and jobs, then every
        batch of operations; ``parsed`` holds the file's line errors and rejected keys (those of lines
        checked while their batches are read join it meanwhile: it is read when the batches are done)."""
        try:
            self.result.budgeted = self.connector.remaining_calls() is not None
            for batch in batches(MASTERS):
                children = [] if not self.connector.inline_children else [
                    record for records in batches(OPERATIONS) for record in records]
                self._batch(batch, partial(self._import_masters, batch, children))
            self._masters_planned()
            for batch in batches(OPERATIONS):
                self._batch(batch, partial(self._import_operations, batch, parsed))
        finally:
            try:
                self.connector.settle()  # hand back the calls reserved but not used
            except Exception as exc:  # an unreleased reservation expires by itself (budget.py)
                log.exception("handing back unused calls failed (%s)", type(exc).__name__)
        if self._respelled > MAX_SPELLING_NOTES:
            self.result.notes.append(f"… and {self._respelled - MAX_SPELLING_NOTES} more lines whose codes differ "
                                     "from the stored ones only in upper/lower case.")
        self._note_unheld()
        if not self.dry_run:
            try:
                self.connector.finish()
            except Exception as exc:  # the lines are applied; what was learned is learned again next time
                log.exception("recording what this import learned failed (%s)", type(exc).__name__)
                self.result.notes.append(
                    f"The cross-references learned in this import could not be stored ({type(exc).__name__}); the "
                    "next import links the records again by their numbers and names. Nothing else is affected."
                )
        self.result.errors.extend(parsed.errors)
        self.result.errors.sort(key=lambda error: (error.line, error.field))
        return self.result

    def _batch(self, records: list[Record], work: Callable[[], None]) -> None:
        """Do ``work`` for one batch; whatever stops it, every record of the batch ends with an outcome
        (and a stop that concerns the rest of the file applies to the later batches too)."""
        self._done = set()
        for record in records:
            self._given.setdefault(record.record_type, set()).update(record.values)
        try:
            if self._out_of_time():
                self.stops.rest_waits = True
            if self._stop is None and not self.stops.rest_waits:
                work()
        except _OutOfBudgetError:  # the reads do not fit (now): everything left waits
            self.stops.add(StopReason.BUDGET)
            self.stops.rest_waits = True
        except AllowanceExceededError:
            self.stops.add(StopReason.RETRIES)
            self.stops.rest_waits = True
        except CallLimitReachedError as exc:
            self._limit(exc)
            self.stops.rest_waits = True
        except ApiUnavailableError as exc:  # the current state could not be read: nothing more is written
            self._stop, self.stop_cause = _unavailable_error(exc, self.target), exc
        except ApiRejectedError as exc:  # the target refused a read the plan needs: nothing more is written
            self.stop_cause = exc
            self._stop = LineError(
                0, "", "", "", f"{self.target} refused to return the records needed to plan the import: {exc.message}",
                f"nothing was changed for this line; fix the cause {self.target} names (or ask its support), then "
                "upload the rejected lines again",
            )
        except Exception as exc:  # last resort: no line may end without an outcome
            log.exception("import stopped by an unexpected %s", type(exc).__name__)
            self._stop, self.stop_cause = _internal_error(exc), exc
        for record in records:
            if id(record) in self._done:
                continue
            if self._stop is not None:
                self._reject(record, self._stop)
            else:
                self._add(Outcome(record, LineStatus.DEFERRED))
        # the batch's answers, plans and outcomes were freed in the worker threads' heaps: hand the
        # free pages back, or the resident memory of a long import grows with every batch written
        release_freed_memory()

    @property
    def stopped(self) -> LineError | None:
        """Why every record not finished was rejected (``line`` 0: one error for all of them), if so."""
        return self._stop

    @property
    def stops(self) -> Stops:
        return self.result.stops

    def _out_of_time(self) -> bool:
        if self.deadline is None or time.monotonic() < self.deadline:
            return False
        if self.stops.add(StopReason.TIME):
            log.warning("the import reached its time limit; the lines not yet written are deferred")
        return True

    def _note_unheld(self) -> None:
        """Names once the fields of the file the target has no place for (they are ignored)."""
        parts = []
        for record_type in RecordType:
            unheld = [name for name in self.connector.unheld_fields(record_type)
                      if name in self._given.get(record_type, ())]
            if unheld:
                parts.append(f"{record_type}: {', '.join(unheld)}")
        if parts:
            self.result.notes.append(f"{self.target} has no place for these fields of the file; they were ignored: "
                                     + "; ".join(parts) + ".")

    def _folded(self, key: tuple[Value, ...]) -> tuple[Value, ...]:
        return fold_key(key) if self._fold else key

    # --- phases -----------------------------------------------------------------------------
    def _stored(self, record_type: RecordType) -> StoredRecords:
        """The stored records of ``record_type`` by (folded) key, read at the first batch that needs them
        (each record packed as it arrives: the list is never held whole)."""
        if record_type not in self._remote:
            self._afford_read(record_type)
            remote, unkeyed = StoredRecords(record_type, fold=self._fold), []
            for stored in self.connector.each_record(record_type):
                key = stored_key(stored, record_type)
                remote.add(self._folded(key), stored)
                if not any(key):  # never for SmartTID
                    unkeyed.append(stored)
            self._unkeyed[record_type] = unkeyed
            self._remote[record_type] = remote
        return self._remote[record_type]

    def _masters_planned(self) -> None:
        """Every employee and job is planned: the stored employees are let go (the operations look up
        jobs only), unless the readiness report lists them afterwards (``on_match``)."""
        if self.on_match is None:
            self._remote.pop(RecordType.EMPLOYEE, None)
            self._unkeyed.pop(RecordType.EMPLOYEE, None)

    def _stored_job(self, folded_code: Value) -> RemoteRecord | None:
        """The stored job with this (folded) code, the stored jobs read once."""
        held = self._remote.get(RecordType.JOB, self._jobs_for_operations)
        if held is None:
            self._afford_read(RecordType.JOB)
            held = StoredRecords(RecordType.JOB, fold=self._fold)
            for stored in self.connector.each_record(RecordType.JOB):
                held.add(self._folded(stored_key(stored, RecordType.JOB)), stored)
            self._jobs_for_operations = held
        return held.get((folded_code,))

    def stored_records(self, record_type: RecordType) -> list[RemoteRecord]:
        """The stored records of ``record_type`` the plan read (operations: of the jobs it read them for;
        employees: kept only with ``on_match``)."""
        if record_type is RecordType.OPERATION:
            return [record for records in self._operations_read.values() for record in records]
        held = self._remote.get(record_type)
        return [*(held.values() if held is not None else ()), *self._unkeyed.get(record_type, [])]

    def _import_masters(self, records: list[Record], operations: list[Record]) -> None:
        writes: list[Write] = []
        for record_type in (RecordType.EMPLOYEE, RecordType.JOB):
            of_type = [record for record in records if record.record_type is record_type]
            if not of_type:
                continue
            remote = self._stored(record_type)
            unkeyed = self._unkeyed[record_type]
            writes.extend(self._plan(of_type, remote, unkeyed) if unkeyed else self._plan(of_type, remote))
        if self.connector.inline_children:
            writes = self._with_children(writes, operations)
        if self.dry_run:
            self._carry_out(writes)
            return
        first = [write for write in writes if self.connector.write_first(write.record)]
        self._apply_within_budget(first)
        rest = [write for write in writes if not self.connector.write_first(write.record)]
        if first and rest and self.stops.first is not None:
            for write in rest:  # they may depend on a first write that waits (a Template job)
                self._add(Outcome(write.record, LineStatus.DEFERRED))
            return
        self._apply_within_budget(rest)

    def _with_children(self, writes: list[Write], operations: list[Record]) -> list[Write]:
        """A new job's operations (those that can be created) ride along in its create."""
        layout = LAYOUTS[RecordType.OPERATION]
        by_job: dict[Value, list[Record]] = {}
        for operation in operations:
            if all(name in operation.values for name in layout.required_to_create):
                by_job.setdefault(self._folded((operation.key[0],))[0], []).append(operation)
        return [
            replace(write, children=tuple(by_job.get(self._folded(write.record.key)[0], ())))
            if write.remote is None and write.record.record_type is RecordType.JOB else write
            for write in writes
        ]

    def _import_operations(self, operations: list[Record], parsed: ParsedFile) -> None:
        ready: dict[Value, list[Record]] = {}
        for operation in operations:
            if id(operation) in self._with_job:  # created with its job
                self._done.add(id(operation))
                continue
            job_code = operation.key[0]
            folded = self._folded((job_code,))[0]
            job = self._jobs_waiting.get(folded)  # the job in the file, deferred or rejected
            if StopReason.LIMIT in self.stops or (job is not None and job[0] is LineStatus.DEFERRED):
                self._add(Outcome(operation, LineStatus.DEFERRED))  # its job waits too
                continue
            if job is not None and job[0] is LineStatus.REJECTED:
                self._reject(operation, _dependent_error(operation, f"its job {job_code} on line {job[1]} "
                                                         "could not be imported (see that line)"))
                continue
            held = self._job_codes.get(str(folded))  # the job in the file, written or unchanged: its code as stored
            rejected_line = parsed.rejected_keys.get(parsed.slot(RecordType.JOB, (job_code,)))
            if held is None and rejected_line is not None:
                self._reject(operation, _dependent_error(operation, f"its job {job_code} on line {rejected_line} "
                                                         "was rejected (see that line)"))
                continue
            stored_code: Value
            if held is not None:
                stored_code = held
            else:
                stored_job = self._stored_job(folded)
                if stored_job is None:
                    self._reject(operation, _dependent_error(
                        operation,
                        f"job {job_code} does not exist in {self.target} and is not in this file",
                        f"add a Job line for {job_code} to the file, or create the job in {self.target} first",
                    ))
                    continue
                stored_code = stored_key(stored_job, RecordType.JOB)[0]
            if stored_code != job_code:
                self._note_spelling(operation, "sJobCode", job_code, stored_code)
                operation.values["sJobCode"] = stored_code
                operation.key = (stored_code, *operation.key[1:])
            ready.setdefault(stored_code, []).append(operation)
        writes: list[Write] = []
        jobs = list(ready.items())
        if self.result.budgeted:  # each read reserved first, one after another
            for job_code, records in jobs:
                cost = self.connector.read_cost(RecordType.OPERATION, job_code=str(job_code))
                if cost and not self.connector.reserve(cost):
                    self.stops.add(StopReason.BUDGET)
                    for record in records:
                        self._add(Outcome(record, LineStatus.DEFERRED))
                    continue
                remote_ops = self.connector.list_records(RecordType.OPERATION, job_code=str(job_code))
                writes.extend(self._plan_operations(records, remote_ops))
        else:  # the reads run with bounded concurrency
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="import-read") as pool:
                stored = pool.map(lambda code: self.connector.list_records(RecordType.OPERATION, job_code=str(code)),
                                  [code for code, _ in jobs])
                for (_, records), remote_ops in zip(jobs, stored, strict=True):
                    writes.extend(self._plan_operations(records, remote_ops))
        self._carry_out(writes)

    def _plan_operations(self, records: list[Record], remote_ops: list[RemoteRecord]) -> list[Write]:
        if self.on_match is not None and records:
            self._operations_read[str(records[0].key[0])] = list(remote_ops)
        remote = {self._folded(stored_key(r, RecordType.OPERATION)): r for r in remote_ops}
        unkeyed = [r for r in remote_ops if not any(stored_key(r, RecordType.OPERATION))]
        return self._plan(records, remote, unkeyed)

    def _note_spelling(self, record: Record, name: str, given: Value, stored: Value) -> None:
        """The file spells a code differently from the target in case only: the stored spelling is kept."""
        with self._lock:
            self._respelled += 1
            if self._respelled <= MAX_SPELLING_NOTES:
                self.result.notes.append(
                    f"Line {record.line}: {name} {given} is stored as {stored}; codes are compared without regard "
                    "to upper/lower case, so the stored record was used and its spelling kept."
                )

    def _plan(self, records: list[Record], remote: dict[tuple[Value, ...], RemoteRecord] | StoredRecords,
              unkeyed: list[RemoteRecord] | None = None) -> list[Write]:
        """The plan of ``records`` (:func:`shared.importing.plan.plan`), its decisions recorded: the
        spelling notes, the matches (``connector.matched``, ``on_match``), the rejected and unchanged
        records' outcomes; returns the writes. ``unkeyed``: stored records without a key, which a
        record may be linked to (``connector.link``) — a linked one is taken out of the list."""
        planned = plan(records, remote, self.connector, fold=self._fold, unkeyed=unkeyed or (), target=self.target)
        if unkeyed:
            unkeyed[:] = planned.unlinked
        for spelling in planned.respelled:
            self._note_spelling(spelling.record, spelling.name, spelling.given, spelling.kept)
        for record, stored in planned.matched:
            self.connector.matched(record, stored)
            if self.on_match is not None:
                self.on_match(record, stored)
        for rejection in planned.rejected:
            self._reject(rejection.record, *rejection.errors)
        for record in planned.unchanged:
            self._add(Outcome(record, LineStatus.UNCHANGED))
        return planned.writes

    def _carry_out(self, writes: list[Write]) -> None:
        """Apply ``writes`` within the call budget; a dry run never applies: each planned write ends
        with the outcome it would have."""
        if not self.dry_run:
            self._apply_within_budget(writes)
            return
        for write in writes:
            self._with_job.update(id(child) for child in write.children)
            for outcome in outcomes_of(write):
                self._add(outcome)

    def _apply(self, writes: list[Write]) -> None:
        if not writes:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="import-write") as pool:
            list(pool.map(self._write, writes))

    def _write(self, write: Write) -> None:
        record = write.record
        if StopReason.LIMIT in self.stops or self._out_of_time():
            self._add(Outcome(record, LineStatus.DEFERRED))
            return
        if self._fatal:
            self._reject(record, line_error(record, self._fatal, "fix the problem named above and upload the "
                                            "rejected lines again"))
            return
        try:
            if write.remote is None and write.children:
                self.connector.create_with_children(record.record_type, write.values,
                                                    [dict(child.values) for child in write.children])
                self._with_job.update(id(child) for child in write.children)
            elif write.remote is None:
                self.connector.create(record.record_type, write.values)
            else:
                self.connector.update(record.record_type, write.remote.id, write.values)
        except ApiRejectedError as exc:
            action = "create" if write.remote is None else "update"
            self._reject(record, line_error(
                record,
                f"{self.target} refused to {action} {record.describe()}: {exc.message}",
                f"correct the line as {self.target}'s message says, then upload the rejected lines again",
            ))
        except CallLimitReachedError as exc:  # Tic-Tac's 429: this line and every one not yet sent wait
            self._limit(exc)
            self._add(Outcome(record, LineStatus.DEFERRED))
        except AllowanceExceededError:  # more calls than reserved (retries): the call was not sent
            self.stops.add(StopReason.RETRIES)
            self._add(Outcome(record, LineStatus.DEFERRED))
        except AuthenticationFailedError as exc:
            self._fatal = str(exc)
            self._reject(record, _unavailable_error(exc, self.target))
        except ApiUnavailableError as exc:
            self._reject(record, _unavailable_error(exc, self.target))
        except Exception as exc:  # last resort: the line is reported, never lost
            log.exception("writing %s failed with an unexpected %s", record.describe(), type(exc).__name__)
            self._reject(record, _internal_error(exc))
        else:
            for outcome in outcomes_of(write):
                self._add(outcome)

    # --- the call budget (targets with a daily limit; a no-op for the others) --------------------
    def _afford_read(self, record_type: RecordType) -> None:
        cost = self.connector.read_cost(record_type)
        if cost and not self.connector.reserve(cost):
            raise _OutOfBudgetError

    def _apply_within_budget(self, writes: list[Write]) -> None:
        """Apply ``writes`` in order, in rounds: each round reserves the most calls its writes may take
        (as many writes as fit now), makes them, and hands back at once what they did not use, so the
        next round can use it. Writes that do not fit (the budget has no room for the next one) wait."""
        if self.connector.remaining_calls() is None:
            self._apply(writes)
            return
        left = writes
        while left:
            costs = [self.connector.write_cost(w.record.record_type, create=w.remote is None, values=w.values)
                     for w in left]
            take = len(left)
            if not self.connector.reserve(sum(costs)):
                remaining, take, used = self.connector.remaining_calls() or 0, 0, 0
                while take < len(left) and used + costs[take] <= remaining:
                    used, take = used + costs[take], take + 1
                if take and not self.connector.reserve(used):
                    take = 0
            if not take:
                self.stops.add(StopReason.BUDGET)
                break
            self._apply(left[:take])
            self.connector.settle()  # what the round did not use is free again at once
            left = left[take:]
            if self.stops.halt_writes:
                break
        for write in left:
            self._add(Outcome(write.record, LineStatus.DEFERRED))

    def _limit(self, exc: CallLimitReachedError) -> None:
        if self.stops.add(StopReason.LIMIT):
            self.connector.block_until(exc.until)
            self.result.notes.append(f"{self.target} refused a call because its call limit was reached ({exc}); "
                                     "the lines not yet written wait and are applied automatically later.")

    # --- bookkeeping ------------------------------------------------------------------------
    def _add(self, outcome: Outcome) -> None:
        record, status = outcome.record, outcome.status
        with self._lock:
            self._done.add(id(record))
            if self.on_outcome is not None:
                self.on_outcome(outcome)
            elif self.keep_outcomes:
                self.result.outcomes.append(outcome)
            if status is not LineStatus.REJECTED:
                self.result.counts[status.value] += len(record.lines)
            if status is LineStatus.DEFERRED:
                self.result.deferred_lines.extend(record.lines)
                self.result.deferred_types[record.record_type] += 1
            if record.record_type is RecordType.JOB:
                folded = self._folded(record.key)[0]
                if status in _WAITING_OR_REJECTED:
                    self._jobs_waiting[folded] = (status, record.line, record.key[0])
                else:  # the usual case: nothing but the code, packed
                    self._jobs_waiting.pop(folded, None)
                    self._job_codes.add(str(record.key[0]))

    def _reject(self, record: Record, *errors: LineError) -> None:
        self._add(Outcome(record, LineStatus.REJECTED))
        with self._lock:
            for line in record.lines:
                self.result.errors.extend(
                    LineError(line, e.record_type or record.record_type, e.field, e.value, e.reason, e.action)
                    for e in errors
                )


#: the statuses of a job its operations need to know (any other: the job is in the target)
_WAITING_OR_REJECTED = frozenset({LineStatus.DEFERRED, LineStatus.REJECTED})


class _OutOfBudgetError(Exception):
    """The reads of the current state do not fit in the call budget now."""


def _unavailable_error(exc: ApiUnavailableError, target: str = "SmartTID") -> LineError:
    if isinstance(exc, AuthenticationFailedError):
        action = "fix the credentials as described, then upload the rejected lines again"
    elif exc.maybe_applied:
        action = (f"{target} did not confirm this write and could not be asked afterwards, so it may or may not "
                  f"have been applied; upload the rejected lines again when {target} is available (a line whose "
                  "values are already stored is left unchanged)")
    else:
        action = f"nothing was changed for this line; upload the rejected lines again when {target} is available"
    return LineError(0, "", "", "", str(exc), action)


def _internal_error(exc: Exception) -> LineError:
    return LineError(
        0, "", "", "",
        f"TimeBridge stopped on an internal error ({type(exc).__name__}) before this line was finished; it may or "
        "may not have been written",
        "upload the rejected lines again (lines already applied are recognised and not written twice); if the "
        "error comes back, send this report to TimeBridge support",
    )


def _dependent_error(operation: Record, reason: str, action: str | None = None) -> LineError:
    job_code = operation.key[0]
    return line_error(
        operation,
        f"names the operation's job, and the operation cannot be imported: {reason}",
        action or f"fix the Job line for {job_code} first, then upload both lines again",
        field="sJobCode (position 1)",
        value=str(job_code),
    )


def reject_all(parsed: ParsedFile, reason: str, action: str,
               batches: Callable[[frozenset[RecordType]], Iterable[list[Record]]] | None = None) -> ImportResult:
    """Every record rejected for one reason that stopped the whole import (e.g. a missing secret);
    ``batches``: the records, when the file was not parsed whole (:mod:`shared.importing.passes`)."""
    result = ImportResult()
    read = batches or in_memory(parsed)
    for wanted in (MASTERS, OPERATIONS):
        for batch in read(wanted):
            for record in batch:
                result.errors.extend(LineError(line, record.record_type, "", "", reason, action)
                                     for line in record.lines)
    result.errors.extend(parsed.errors)  # last: lines checked while their batches were read are in it now
    result.errors.sort(key=lambda error: (error.line, error.field))
    return result
