"""The import's plan as a pure function (shared/importing/plan.py): records and stored records in,
decisions out — no target, no service. The matching rules are SmartTID's defaults
(:class:`ConnectorDefaults`), which have no way to read or write: a plan that tried would fail."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from shared.errors import AmbiguousMatchError
from shared.importing.plan import LineStatus, Outcome, Write, outcomes_of, plan
from shared.importing.stored import StoredRecords
from shared.records.layouts import RecordType
from shared.records.record import LineError, Record
from shared.records.values import Value
from shared.targets.base import ConnectorDefaults, RemoteRecord


def job(code: str, line: int = 2, **values: Value) -> Record:
    return Record(RecordType.JOB, (code,), {"sJobCode": code, **values}, [line])


def stored_jobs(*remotes: RemoteRecord, fold: bool = True) -> StoredRecords:
    held = StoredRecords(RecordType.JOB, fold=fold)
    for remote in remotes:
        code = str(remote.values["sJobCode"])
        held.add((code.casefold() if fold else code,), remote)
    return held


A360 = RemoteRecord(id=7, values={"sJobCode": "A360", "sJobDescription": "Frame", "sCustomerCode": "C1",
                                  "sCustomerName": "Old name", "nPlannedNumber": 4})


def test_a_record_as_stored_is_matched_and_unchanged_with_nothing_to_write() -> None:
    record = job("A360", sJobDescription="Frame", nPlannedNumber=4)
    decided = plan([record], stored_jobs(A360), ConnectorDefaults(), fold=True)
    assert decided.unchanged == [record]
    assert decided.matched == [(record, A360)]
    assert (decided.writes, decided.rejected, decided.respelled) == ([], [], [])


def test_a_changed_field_is_an_update_of_that_field_with_its_companions_and_the_key() -> None:
    record = job("A360", sJobDescription="Frame", sCustomerCode="C2", sCustomerName="New name",
                 sCustomerCity="Aarhus", nPlannedNumber=4)
    decided = plan([record], stored_jobs(A360), ConnectorDefaults(), fold=True)
    assert decided.writes == [Write(record, A360, {"sJobCode": "A360", "sCustomerCode": "C2",
                                                   "sCustomerName": "New name", "sCustomerCity": "Aarhus"},
                                    ("sCustomerCode",))]
    assert decided.matched == [(record, A360)] and decided.unchanged == []
    # what the update does (or, in a dry run, would do): the changed field with its stored value before
    assert outcomes_of(decided.writes[0]) == [Outcome(record, LineStatus.UPDATED, ("sCustomerCode",),
                                                      {"sCustomerCode": "C1"})]


def test_a_record_not_stored_is_created_with_every_value_it_gives() -> None:
    record = job("B1", sJobDescription="Door", nPlannedNumber=Decimal(2))
    child = Record(RecordType.OPERATION, ("B1", 10), {"sJobCode": "B1", "nLineNumber": 10,
                                                       "sOperationCode": "CUT", "sDescription": "Cut"}, [3])
    decided = plan([record], stored_jobs(A360), ConnectorDefaults(), fold=True)
    assert decided.writes == [Write(record, None, dict(record.values), ("sJobCode", "sJobDescription",
                                                                       "nPlannedNumber"))]
    assert (decided.matched, decided.unchanged, decided.rejected) == ([], [], [])
    # a create, and one that carries its job's operations: each ends created
    with_child = Write(record, None, dict(record.values), decided.writes[0].changed, children=(child,))
    assert [(o.record, o.status) for o in outcomes_of(with_child)] == [
        (record, LineStatus.CREATED), (child, LineStatus.CREATED)]


def test_a_record_not_stored_without_a_field_its_create_needs_is_rejected_naming_the_field() -> None:
    record = job("B1", line=5, nPlannedNumber=3)
    decided = plan([record], stored_jobs(A360), ConnectorDefaults(), fold=True, target="SmartTID")
    assert decided.writes == [] and len(decided.rejected) == 1
    rejection = decided.rejected[0]
    assert rejection.record is record
    (error,) = rejection.errors
    assert (error.line, error.field) == (5, "sJobDescription (position 2)")
    assert "does not exist in SmartTID yet" in error.reason


class RefusesTemplates(ConnectorDefaults):
    """A target's rule: a job made from a template the records do not hold cannot be created."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        self.asked.append((str(record.key[0]), len(planned)))
        if record.values.get("sJobTemplate") and not any(r.values.get("sStatus") == "Template" for r in planned):
            return LineError(record.line, record.record_type, "sJobTemplate (position 7)",
                             str(record.values["sJobTemplate"]), "no such template", "import the template first")
        return None


def test_a_create_the_target_refuses_is_rejected_with_its_reason_and_the_others_still_planned() -> None:
    refused = job("B1", line=4, sJobDescription="Door", sJobTemplate="T9")
    plain = job("B2", line=6, sJobDescription="Window")
    rules = RefusesTemplates()
    decided = plan([refused, plain], stored_jobs(A360), rules, fold=True)
    assert [(r.record, r.errors[0].reason) for r in decided.rejected] == [(refused, "no such template")]
    assert [w.record for w in decided.writes] == [plain]
    assert rules.asked == [("B1", 2), ("B2", 2)]  # each asked with the batch's records of its type


def test_a_code_spelled_otherwise_in_case_only_takes_the_stored_spelling_and_is_noted() -> None:
    record = job("a360", line=9, sJobDescription="Frame", nPlannedNumber=5)
    decided = plan([record], stored_jobs(A360), ConnectorDefaults(), fold=True)
    assert [(s.record, s.name, s.given, s.kept) for s in decided.respelled] == [(record, "sJobCode", "a360", "A360")]
    assert record.key == ("A360",) and record.values["sJobCode"] == "A360"
    assert decided.writes == [Write(record, A360, {"sJobCode": "A360", "nPlannedNumber": 5}, ("nPlannedNumber",))]


def test_without_folding_a_code_spelled_otherwise_is_another_record() -> None:
    record = job("a360", sJobDescription="Frame")
    decided = plan([record], stored_jobs(A360, fold=False), ConnectorDefaults(), fold=False)
    assert decided.respelled == [] and decided.matched == []
    assert [(w.record, w.remote) for w in decided.writes] == [(record, None)]


UNKEYED = [RemoteRecord(id="u1", values={"sJobDescription": "Frame"}),
           RemoteRecord(id="u2", values={"sJobDescription": "Frame"}),
           RemoteRecord(id="u3", values={"sJobDescription": "Door"})]


class LinksByDescription(ConnectorDefaults):
    """A target's rule: a record no stored key matches is the one stored record of its description."""

    def link(self, record: Record, candidates: Sequence[RemoteRecord]) -> RemoteRecord | None:
        same = [c for c in candidates if c.values.get("sJobDescription") == record.values.get("sJobDescription")]
        if len(same) > 1:
            raise AmbiguousMatchError(f"{len(same)} jobs are called {record.values['sJobDescription']}",
                                      [str(c.id) for c in same])
        return RemoteRecord(same[0].id, same[0].values | {"sJobCode": record.key[0]}) if same else None


def test_an_ambiguous_link_is_rejected_and_a_unique_one_is_matched_once() -> None:
    ambiguous = job("B1", line=3, sJobDescription="Frame")
    linked = job("B2", line=4, sJobDescription="Door")
    again = job("B3", line=5, sJobDescription="Door")
    unkeyed = list(UNKEYED)
    decided = plan([ambiguous, linked, again], stored_jobs(), LinksByDescription(), fold=True, unkeyed=unkeyed,
                   target="Tic-Tac")
    ((record, (error,)),) = [(r.record, r.errors) for r in decided.rejected]
    assert record is ambiguous and error.line == 3
    assert error.reason == "cannot be linked: 2 jobs are called Frame"
    assert "make the Tic-Tac objects named in the message distinguishable" in error.action
    assert [(r, m.id) for r, m in decided.matched] == [(linked, "u3")] and decided.unchanged == [linked]
    assert [(w.record, w.remote) for w in decided.writes] == [(again, None)]  # u3 is linked once only
    assert [c.id for c in decided.unlinked] == ["u1", "u2"]
    assert unkeyed == UNKEYED  # the caller's list is left as it was
