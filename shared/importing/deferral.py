"""Lines that wait for a target's call budget (Tic-Tac: 500 calls per 24 hours) or because an import
reached its time limit (``IMPORT_TIME_LIMIT_SECONDS``, any target), and their turn.

* **Where they live.** The original bytes of the waiting lines are kept beside the file's receipt,
  ``<archive>/<folder>/<stem>.deferred<ext>``, and one *pending entry* per file,
  ``<archive>/_pending/<target>/<start, ns since 1970>-<run id>.json``, says which file they came from,
  their line numbers in the original file, how many wait and when the budget is expected to fit.
  Nothing about them goes to the error container (that is for what a person must fix).
* **Order.** Entries are taken oldest first (their names sort by the time the file's import
  began). While any entry is pending, or while another import for the same target runs, a newer
  file does not write at all: it is queued whole behind them, so old ERP data never overwrites new.
  Every import of a budgeted target, and every resumption, holds the lease of one lock blob,
  ``_pending/<target>/lock``: they run one at a time, and the call budget (an ETag-guarded Table
  entity, ``shared/targets/budget.py``) is never exceeded, also across instances. A target without
  a budget (SmartTID) takes the lock only while an entry is pending; otherwise its imports run side
  by side, as they always did.
* **Resumption.** The ``resume_deferred`` timer (``RESUME_SCHEDULE``) takes the lock, and for each
  entry in order imports its waiting lines again (planned against the target as it is then) as soon
  as the shared call budget has room for the entry's first calls (``calls_to_start``: the reads of a
  plan and the costliest single write) — whatever ``next_attempt_after`` (an estimate for people)
  says, so calls freed early, or a raised budget, are used at the next run. What still does not fit
  stays, with a new estimate, and the later entries keep waiting. Each resumption leaves a receipt
  ``resumed-<time>.json`` beside the first one; lines it rejects get an error report in the error
  container, numbered as in the original file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient, ContentSettings

from shared.importing.importer import ImportResult
from shared.platform.clock import iso
from shared.platform.storage import held_lease
from shared.targets.base import Connector

log = logging.getLogger(__name__)

PENDING = "_pending"
#: The reads a new plan makes before its first write, at most (Tic-Tac: users, projects and the
#: activities of one job).
RESUME_READ_CALLS = 3
#: ``calls_to_start`` of an entry that does not say (a file queued whole): the reads and one write.
DEFAULT_CALLS_TO_START = RESUME_READ_CALLS + 1
#: The deferral event's reason code for each :attr:`ImportResult.stopped_by`.
REASONS = {"budget": "call-budget", "limit": "call-limit", "retries": "retries", "time": "time-limit"}
JSON = ContentSettings(content_type="application/json; charset=utf-8")


@dataclass
class PendingEntry:
    """One file's waiting lines (see the module docstring)."""

    name: str  # the entry's blob name in the archive container
    source: str  # the input file's name
    folder: str  # its output folder (``<name>/<run id>``)
    lines_blob: str  # archive blob with the waiting lines, original bytes
    original_lines: list[int] = field(default_factory=list)  # line numbers in the original; [] = as they are
    waiting: int = 0
    next_attempt_after: str = ""  # ISO time; "" = at the next run
    queued_behind: str = ""  # the older file this one waited for (queued whole)
    resumptions: int = 0
    #: calls a resumption needs before it can write anything (0: unknown, :data:`DEFAULT_CALLS_TO_START`)
    calls_to_start: int = 0
    deferred_since: str = ""  # ISO time of the first deferral (the alert on long waits)
    reason: str = ""  # why the lines wait: call-budget, call-limit, retries, time-limit, queued


class Deferrals:
    """The pending entries of one target in the archive container."""

    def __init__(self, service: BlobServiceClient, container: str, target: str) -> None:
        self.service = service
        self.container = container
        self.prefix = f"{PENDING}/{target}/"

    def _blob(self, name: str) -> BlobClient:
        return self.service.get_blob_client(self.container, name)

    def entries(self) -> list[PendingEntry]:
        """Every pending entry, oldest first."""
        container = self.service.get_container_client(self.container)
        names = sorted(blob.name for blob in container.list_blobs(name_starts_with=self.prefix)
                       if blob.name.endswith(".json"))
        entries = []
        for name in names:
            with suppress(ResourceNotFoundError):
                entries.append(PendingEntry(**json.loads(self._blob(name).download_blob().readall())))
        return entries

    def entry_name(self, started_ns: int, run_id: str) -> str:
        """Names sort by ``started_ns``: when the file's import began (under the target's lock) or,
        for a queued file, when it was queued — nanoseconds, so two files of one second keep order."""
        return f"{self.prefix}{started_ns:020d}-{run_id}.json"

    def save(self, entry: PendingEntry) -> None:
        self._blob(entry.name).upload_blob(json.dumps(asdict(entry), indent=2, ensure_ascii=False).encode(),
                                           overwrite=True, content_settings=JSON)

    def remove(self, entry: PendingEntry) -> None:
        with suppress(ResourceNotFoundError):
            self._blob(entry.name).delete_blob()

    @contextmanager
    def turn(self) -> Iterator[BlobLeaseClient | None]:
        """The target's lock: yields None while another import or resumption holds it."""
        lock = self._blob(f"{self.prefix}lock")
        with suppress(ResourceExistsError, HttpResponseError):
            if not lock.exists():
                lock.upload_blob(b"", overwrite=False)
        with held_lease(lock) as lease:
            yield lease


def calls_to_start(connector: Connector, result: ImportResult) -> int:
    """Calls a resumption of ``result``'s deferred lines needs before it can write anything: the reads
    of a new plan and the costliest single write among them."""
    costs = [connector.write_cost(record_type, create=True) for record_type in result.deferred_types]
    return RESUME_READ_CALLS + max(costs, default=1)


def waiting_until(connector: Connector, result: ImportResult) -> str:
    """When the first of the deferred lines are expected to fit in the call budget ("" without a budget):
    an estimate for people — the resume timer goes as soon as the budget has room."""
    if not result.has_deferred():
        return ""
    moment = connector.next_free_at(calls_to_start(connector, result))
    return iso(moment) if moment is not None else ""


def room_to_start(connector: Connector, entry: PendingEntry) -> bool:
    """Whether the shared call budget has room now for ``entry``'s first calls (always, without a budget)."""
    remaining = connector.remaining_calls()
    return remaining is None or remaining >= (entry.calls_to_start or DEFAULT_CALLS_TO_START)
