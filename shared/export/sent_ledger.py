"""The ledger export from a target without a "transferred" flag (Tic-Tac): a ledger source
(:class:`SentLedgerSource`) for the exactly-once protocol (``protocol.py``: intent → staged file →
verify → ledger → receipt → close), over the target's :class:`~shared.targets.base.EntriesLedger`.

Such a target's rows carry no change time and a deleted row disappears, so the export ledger
remembers what it sent (``source_ledger.py``) and each run (docs/export.md, "Export from Tic-Tac"):

1. completes an interrupted run first (from its manifest, no call to the target);
2. reserves its calls from the shared call budget (one entries read, a project list when needed, each
   with its retries; unused calls are handed back) — or is skipped, saying when the budget allows the
   next run;
3. reads the entries once: the entry-date window, changed since the last recorded read (whole days,
   + 1); once a day (and on the first run, or after more than 90 days) the whole window — the
   reconcile that finds deletions;
4. classifies and maps the entries (``sent_plan.plan``), allocates line ids from TimeBridge's own
   sequence, stages the file and a manifest holding every export-ledger write of the run, commits
   the intent (line sequence included), writes and verifies the file, records the ledger.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, cast

from shared.errors import AllowanceExceededError, CallLimitReachedError, ConfigurationError, ExportFailedError
from shared.export.ledger_format import render
from shared.export.ledger_table import Intent
from shared.export.protocol import Exporter, Manifest
from shared.export.receipt import ExportReceipt
from shared.export.sent_plan import JOB, TIME, Links, Plan, Rules, link_by_number, plan
from shared.export.source_ledger import Catalogue, SourceLedger, row_from_json, row_to_json
from shared.export.spool import SpooledFile
from shared.platform.clock import iso
from shared.platform.config import CorrectionDate
from shared.targets.base import Connector, EntriesConnector, EntriesLedger, Entry
from shared.targets.registry import target_spec

log = logging.getLogger(__name__)

#: One full-window read (the reconcile, deletions) this often.
RECONCILE_EVERY = timedelta(hours=24)
#: A project list (project numbers, activity types) at most this often outside the reconcile.
CATALOGUE_EVERY = timedelta(hours=6)
#: Calls one run needs at most when nothing fails: the entries read, a project list, a user list.
CALLS_PER_RUN = 3


class SentLedgerSource:
    """A target's entries as the exactly-once protocol's source, with TimeBridge's own ledger of what
    it sent (see the module docstring). Nothing is marked in the target."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.settings = exporter.settings
        self.ledger = exporter.ledger
        self.clock = exporter.clock
        self.target = target_spec(self.settings.target_system).display_name

    def export(self, connector: Connector, etag: str, recovered: ExportReceipt | None) -> ExportReceipt | None:
        if not isinstance(connector, EntriesLedger):
            raise ConfigurationError("this target's connector reads no entries for a sent ledger; its export is "
                                     "chosen by its registry entry (shared/targets/registry.py)")
        receipt = self._export(cast(EntriesConnector, connector), etag, [recovered.run_id] if recovered else [])
        return receipt or recovered

    # --- one run --------------------------------------------------------------------------------
    def _export(self, connector: EntriesConnector, etag: str, recovered_runs: list[str]) -> ExportReceipt | None:
        started, calls_before = time.monotonic(), Counter(connector.calls.counts)
        source = SourceLedger(self.ledger.table)
        now = self.clock()
        state = source.state()
        days = None if state.last_read_at is None else connector.changed_days(state.last_read_at, now)
        reconcile = (days is None or state.last_reconcile_at is None
                     or now - state.last_reconcile_at >= RECONCILE_EVERY)
        calls = CALLS_PER_RUN * connector.max_attempts
        if not connector.reserve(calls):
            when = connector.next_free_at(calls)
            log.warning("export: skipped — %s's call budget has no room for this run's %d calls now; "
                        "it runs again at the next schedule at or after %s UTC", self.target, calls,
                        f"{when:%Y-%m-%d %H:%M}" if when else "the budget is raised")
            return None
        try:
            rules = self._rules(connector, now, state.purged_before)
            if reconcile:  # retention: rows dated before the window are final (source_ledger.py)
                source.purge_final_rows(rules.window[0])
            read = connector.read_entries(*rules.window, days_changed_within=None if reconcile else days)
            held = {rowid: (connector.entry(row), reason) for rowid, (row, reason) in source.held().items()}
            known = source.all_rows() if reconcile else source.rows([entry.id for entry in read] + list(held))
            linked = connector.entry_links()  # read once; completed by the lists below
            codes, links = link_by_number(*linked, catalogue=source.catalogue(), target=self.target)
            time_rows = [entry for entry in read if entry.is_time] + [entry for entry, _ in held.values()]
            stale = state.catalogue_at is None or now - state.catalogue_at >= CATALOGUE_EVERY
            if reconcile or (stale and any(codes.needs_catalogue(entry) for entry in time_rows)):
                codes, links = link_by_number(*linked, catalogue=self._refresh_catalogue(connector, source, now),
                                              target=self.target)
            self._record_links(connector, links)
        except CallLimitReachedError as exc:
            connector.block_until(exc.until)
            log.warning("export: skipped — %s; it runs again at the next schedule after that", exc)
            return None
        except AllowanceExceededError:
            log.warning("export: skipped — %s kept failing and the retries used up this run's reserved "
                        "calls; the next scheduled run reads again", self.target)
            return None
        finally:
            connector.settle()
        outcome = plan(read, known, held, codes, rules, reconcile=reconcile)
        summary = self._summary(outcome, read, reconcile, days)
        if outcome.guard:
            log.warning("export: %s", outcome.guard)
        if not outcome.lines and not outcome.guard and not self.settings.export_write_empty_file:
            self._apply(manifest_source(outcome, now, reconcile, summary), "", "", iso(now))
            log.info("export: nothing new from %s (%s; %d rows held, %d pending)", self.target, summary["read"],
                     len(summary["held"]), len(summary["pending"]))
            return None
        return self._write(connector, etag, outcome, now, reconcile, summary,
                           started=started, calls_before=calls_before, recovered_runs=recovered_runs)

    def _write(self, connector: Connector, etag: str, outcome: Plan, now: datetime, reconcile: bool,
               summary: dict[str, Any], **complete: Any) -> ExportReceipt:
        rows: dict[str, list[dict[str, Any]]] = {TIME: [], JOB: []}
        lines: list[dict[str, Any]] = []
        next_id = self.exporter._next_line_id
        for record in (TIME, JOB):  # time lines first, then job lines, each in plan order
            for line in outcome.lines:
                if line.record == record:
                    rows[record].append({"ID": next_id, **line.values})
                    lines.append({"line": next_id, "record": "TimeLedgerEntry" if record == TIME else "JobLedgerEntry",
                                  "rowid": line.rowid, "version": line.version, "reason": line.reason})
                    next_id += 1
        rendered = render(rows[TIME], rows[JOB], encoding=self.settings.export_encoding,
                          decimal_separator=self.settings.export_decimal_separator)
        notes = rendered.notes + outcome.notes + ([f"reconcile stopped: {outcome.guard}"] if outcome.guard else [])
        with SpooledFile.of(rendered) as spooled:
            intent, manifest = self.exporter._stage(spooled, notes, lines=lines,
                                           source=manifest_source(outcome, now, reconcile, summary),
                                           next_line_id=next_id)
            etag = self.exporter._commit_intent(intent, etag)
            receipt, _ = self.exporter._complete(intent, etag, connector, manifest, spooled, **complete)
        return receipt

    # --- what the protocol asks of a source -------------------------------------------------------
    def ids_to_mark(self, manifest: Manifest) -> Sequence[int]:
        return []  # no "transferred" flag: the export ledger is the only record

    def mark(self, connector: Connector, intent: Intent, manifest: Manifest, batch: Sequence[int]) -> None:
        raise ExportFailedError(f"{self.target} has nothing to mark")  # pragma: no cover - ids_to_mark is empty

    def record_ledger(self, intent: Intent, manifest: Manifest, finished_at: str) -> None:
        self._apply(manifest.source, intent.run_id, intent.file_name, finished_at)
        self.ledger.record_run(intent.run_id, intent.file_name, len(manifest.time_ids), len(manifest.job_ids),
                               finished_at)

    def complete_receipt(self, receipt: ExportReceipt, manifest: Manifest) -> None:
        receipt.lines = list(manifest.lines)
        receipt.source = dict(manifest.source.get("summary", {}))

    # --- helpers --------------------------------------------------------------------------------
    def _apply(self, source: dict[str, Any], run_id: str, file_name: str, finished_at: str) -> None:
        """Every export-ledger write of a run (upserts and deletes: repeating them changes nothing)."""
        ledger = SourceLedger(self.ledger.table)
        ledger.write_rows([replace(row_from_json(row), run_id=run_id or row.get("run_id", ""),
                                   file_name=file_name or row.get("file_name", ""))
                           for row in source.get("rows", [])], finished_at)
        ledger.hold({rowid: (row, reason) for rowid, (row, reason) in source.get("hold", {}).items()})
        ledger.release(source.get("release", []))
        ledger.set_missed(source.get("missed", {}))
        moments = {"last_read_at": datetime.fromisoformat(source["read_at"])}
        if source.get("reconcile"):
            moments["last_reconcile_at"] = moments["last_read_at"]
        ledger.save_state(**moments)

    def _rules(self, connector: EntriesConnector, now: datetime, purged_before: date | None = None) -> Rules:
        own, today = connector.entry_rules(), now.date()
        start = today - timedelta(days=own.lookback_days)
        return Rules(
            own=own,
            correction_date=today.isoformat() if self.settings.export_correction_date == CorrectionDate.RUN else None,
            window=(max(start, purged_before or start),  # never before purged rows (source_ledger.py)
                    today + timedelta(days=own.forward_days)),
            target=self.target,
        )

    @staticmethod
    def _record_links(connector: EntriesConnector, links: Links) -> None:
        """The links made by number (users and projects made by hand), recorded by the target."""
        if not (links.users or links.projects):
            return
        connector.record_entry_links(links.users, links.projects)
        log.info("export: linked %d users and %d projects by their numbers", len(links.users), len(links.projects))

    @staticmethod
    def _refresh_catalogue(connector: EntriesConnector, source: SourceLedger, now: datetime) -> Catalogue:
        """The target's lists (project numbers, activity types and names, employee numbers), kept."""
        projects, names, users = connector.entry_catalogue()
        source.save_catalogue(projects, names)
        source.save_users(users)
        source.save_state(catalogue_at=now)
        return source.catalogue()

    @staticmethod
    def _summary(outcome: Plan, read: list[Entry], reconcile: bool, days: int | None) -> dict[str, Any]:
        return {
            "read": {"rows": len(read), "kind": "reconcile (whole window)" if reconcile else "changes",
                     "days_changed_within": None if reconcile else days},
            "counts": dict(sorted(outcome.counts.items())),
            "held": [{"rowid": rowid, "user": entry.user, "project": entry.project_name,
                      "date": entry.date, "reason": reason}
                     for rowid, (entry, reason) in sorted(outcome.hold.items())],
            "pending": sorted(outcome.pending),
            "left_out": {kind: ids for kind, ids in sorted(outcome.left_out.items())},
            "guard": outcome.guard,
        }


def manifest_source(outcome: Plan, read_at: datetime, reconcile: bool, summary: dict[str, Any]) -> dict[str, Any]:
    """The export-ledger writes of a run, as the manifest keeps them (small records, no API rows but
    the held ones)."""
    return {
        "rows": [row_to_json(row) for row in outcome.rows],
        "hold": {rowid: [dict(entry.raw), reason] for rowid, (entry, reason) in outcome.hold.items()},
        "release": sorted(outcome.release),
        "missed": outcome.missed,
        "read_at": read_at.isoformat(),
        # a reconcile stopped by a guard still counts as the day's reconcile (the next one is tomorrow);
        # it changed no "missed" counter, so it does not count towards a deletion
        "reconcile": reconcile,
        "summary": summary,
    }
