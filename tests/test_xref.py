"""The cross-reference table on Azurite: hostile keys, ERP-only values, templates, reverse lookup."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from shared.platform.config import Settings
from shared.platform.storage import ensure_tables, table_service
from shared.records.layouts import RecordType
from shared.targets.tictac.xref import (
    MAX_KEY_LENGTH,
    CrossRef,
    CrossRefs,
    Entity,
    LinkedBy,
    encode_key,
    erp_key,
    hash_of,
    operation_values,
    template_ref,
)

HOSTILE = [
    "a/b", "a\\b", "#1", "what?", "tab\there", "nul\x00", "\x1f\x7f\x85\x9f", "100%", "%41", "A|B", "|", "", "~",
    " lead", "lead", "trail ", "a360", "A360", "Ærø", "😀", "'quote'", "x" * 2000, "x" * 2000 + "y",
    "../..", "PartitionKey eq 'x'",
]


@pytest.fixture
def xrefs(services: dict[str, str]) -> Iterator[CrossRefs]:
    settings = Settings(IntegrationStorage=services["IntegrationStorage"])
    name = f"xref{uuid.uuid4().hex[:12]}"
    ensure_tables(table_service(settings), [name])  # infra/ creates it in Azure; connect never does
    refs = CrossRefs.connect(settings, name)
    yield refs
    refs.table.delete_table()


def test_encoded_keys_are_table_safe_short_and_distinct() -> None:
    keys = [encode_key((text, "10")) for text in HOSTILE]
    assert len(set(keys)) == len(HOSTILE)
    for key in keys:
        assert not set(key) & set("/\\#?")
        assert all(0x20 <= ord(ch) < 0x7F for ch in key)
        assert len(key) <= MAX_KEY_LENGTH
    assert encode_key(("1455", "10")) == "1455|10"
    assert encode_key(("a|b",)) != encode_key(("a", "b"))
    with pytest.raises(ValueError):
        encode_key(())


def test_line_numbers_are_one_key_however_written() -> None:
    values = {"sJobCode": "1455", "nLineNumber": Decimal("10.00")}
    assert erp_key(RecordType.OPERATION, values) == ("1455", "10")
    assert erp_key(RecordType.OPERATION, values | {"nLineNumber": Decimal("1E+1")}) == ("1455", "10")
    assert erp_key(RecordType.OPERATION, values | {"nLineNumber": Decimal("10.5")}) == ("1455", "10.5")


def test_hostile_keys_round_trip_through_azurite(xrefs: CrossRefs) -> None:
    for number, text in enumerate(HOSTILE):
        xrefs.put(CrossRef("tictac", Entity.ACTIVITY, (text, "10"), f"act-{number}", LinkedBy.NAME,
                           {"sOperationCode": text}))
    loaded = xrefs.load("tictac", Entity.ACTIVITY)
    assert len(loaded) == len(HOSTILE)
    for number, text in enumerate(HOSTILE):
        ref = xrefs.get("tictac", Entity.ACTIVITY, (text, "10"))
        assert ref is not None and ref.remote_id == f"act-{number}", repr(text)
        assert ref.erp_values == {"sOperationCode": text}
        assert loaded[(text, "10")].remote_id == f"act-{number}"
    assert xrefs.get("tictac", Entity.ACTIVITY, ("a360 ", "10")) is None
    assert xrefs.get("tictac", Entity.USER, ("a360", "10")) is None  # another partition


def test_operation_values_and_reverse_lookup(xrefs: CrossRefs) -> None:
    operation = {"sJobCode": "1455", "nLineNumber": Decimal("10.0"), "sOperationCode": "PAINT",
                 "sERPReference": "ERP-40", "sDescription": "Painting", "sPlannedTime": Decimal(3)}
    key = erp_key(RecordType.OPERATION, operation)
    xrefs.put(CrossRef("tictac", Entity.ACTIVITY, key, "1607954983993", LinkedBy.CREATED, operation_values(operation),
                       pushed_hash=hash_of({"name": "Painting"})))
    ref = xrefs.by_remote_id("tictac", Entity.ACTIVITY)["1607954983993"]
    assert ref.erp_key == ("1455", "10")
    assert ref.erp_values == {"sJobCode": "1455", "nLineNumber": "10", "sOperationCode": "PAINT",
                              "sERPReference": "ERP-40", "sDescription": "Painting"}
    assert ref.linked_by == "created" and ref.pushed_hash == hash_of({"name": "Painting"})
    assert ref.updated_at
    # the ERP renames the activity: the link survives; a new remote id replaces the old row
    xrefs.put(CrossRef("tictac", Entity.ACTIVITY, key, "999", LinkedBy.NAME, operation_values(operation)))
    assert list(xrefs.by_remote_id("tictac", Entity.ACTIVITY)) == ["999"]
    xrefs.delete("tictac", Entity.ACTIVITY, key)
    assert xrefs.get("tictac", Entity.ACTIVITY, key) is None


def test_a_large_template_is_split_over_properties(xrefs: CrossRefs) -> None:
    job = {"sJobCode": "TPL/1", "sStatus": "Template", "sJobDescription": "Template"}
    operations = [{"sJobCode": "TPL/1", "nLineNumber": Decimal(n), "sOperationCode": f"OP{n}",
                   "sDescription": "Ærø " + "d" * 200} for n in range(400)]
    ref = template_ref("tictac", job, operations)
    xrefs.put(ref)
    entity = xrefs.table.get_entity("tictac|template", encode_key(("TPL/1",)))
    assert "TemplateOperations2" in entity  # more than 60 000 characters: split
    loaded = xrefs.get("tictac", Entity.TEMPLATE, ("TPL/1",))
    assert loaded is not None and len(loaded.template_operations) == 400
    assert loaded.template_operations[399]["nLineNumber"] == "399"
    assert loaded.template_operations[0]["sDescription"].startswith("Ærø ")
    assert loaded.erp_values == {"sStatus": "Template"}


def test_many_links_are_written_in_transactions(xrefs: CrossRefs) -> None:
    refs = [CrossRef("tictac", Entity.USER, (f"E{n:03d}",), f"user{n}") for n in range(230)]
    refs += [CrossRef("tictac", Entity.PROJECT, ("J/1",), "p1"), CrossRef("tictac", Entity.PROJECT, ("J/1",), "p2")]
    xrefs.put_many(refs)
    users = xrefs.load("tictac", Entity.USER)
    assert len(users) == 230 and users[("E229",)].remote_id == "user229"
    assert xrefs.get("tictac", Entity.PROJECT, ("J/1",)).remote_id == "p2"  # the last one wins


def test_a_bad_target_name_is_refused(xrefs: CrossRefs) -> None:
    with pytest.raises(ValueError):
        xrefs.put(CrossRef("Tic/Tac", Entity.USER, ("1",), "x"))


def test_keys_hold_no_percent_and_an_earlier_versions_row_is_read_and_replaced(xrefs: CrossRefs) -> None:
    """A % in a Table key breaks point operations; rows an earlier version wrote with percent-encoded
    keys are still found, never win over the current row, and go when the link is written again."""
    from shared.targets.tictac.xref import legacy_key

    key = ("K 1/Æ", "10")
    assert "%" not in encode_key(key) and legacy_key(key) is not None and "%" in str(legacy_key(key))
    assert legacy_key(("1455", "10")) is None  # plain codes: the same key as before
    earlier = {"PartitionKey": "tictac|activity", "RowKey": legacy_key(key), "RemoteId": "old",
               "LinkedBy": "name", "ErpKey": json.dumps(list(key)), "ErpValues": "{}"}
    xrefs.table.upsert_entity(earlier)
    found = xrefs.get("tictac", Entity.ACTIVITY, key)
    assert found is not None and found.remote_id == "old"  # read under its earlier key
    xrefs.put_many([CrossRef("tictac", Entity.ACTIVITY, key, "new", LinkedBy.NAME)])
    assert xrefs.load("tictac", Entity.ACTIVITY)[key].remote_id == "new"
    rows = list(xrefs.table.query_entities("PartitionKey eq 'tictac|activity'"))
    assert [row["RowKey"] for row in rows] == [encode_key(key)]  # the earlier row is gone
    xrefs.delete("tictac", Entity.ACTIVITY, key)
    assert xrefs.get("tictac", Entity.ACTIVITY, key) is None
