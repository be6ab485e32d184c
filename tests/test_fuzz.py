"""Property-based tests of the import: fuzzed files never raise, and every line ends applied or
reported. Bounded example counts keep CI fast; ``bench/fuzz_import.py`` runs a million inputs."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from shared.importing.passes import MASTERS, OPERATIONS
from shared.records.layouts import RecordType
from tests.conftest import blob_names, read_blob
from tests.functions_host import trigger_import
from tests.support.fuzzing import FRAGMENTS, pass_differences, problems

pieces = st.one_of(st.sampled_from(FRAGMENTS), st.binary(min_size=1, max_size=4))
files = st.lists(pieces, min_size=1, max_size=40).map(b"".join)


@examples(max_examples=1500, deadline=None, derandomize=True)
@given(data=files, chunk=st.integers(min_value=1, max_value=64))
def test_the_parser_accounts_for_every_line_of_any_input(data: bytes, chunk: int) -> None:
    assert problems(data, chunk) == []


# realistic lines of the three types (codes that repeat and differ in case, valid and invalid values, texts at
# and just over their limits), as most of a real file is, now and then with a hostile value (a quote, a tab, a
# control character): read in passes, most lines take the readers' quick ways, which must agree with parse_file
codes = st.sampled_from(["E1", "e1", " e1", "E2", " E3 ", "E3", "J1", "j1", "J2 ", "J2", "", "x" * 20, "x" * 21, "Søren", "😀" * 10,
                         "😀" * 11])
usual = st.sampled_from(["", "", "", "Anne", " Bo ", "Ærø", "10", "1,5", "1.25", "-3", "0", "1", "2", "yes",
                         "21-11-2026", "2026-02-30", "Started", "started", "Template", "9" * 40, "x" * 10, "x" * 11,
                         "x" * 20, "x" * 21, "x" * 40, "x" * 41, "x" * 50, "x" * 51, "😀", "😀" * 25, "😀" * 26])
hostile = st.sampled_from(["a\tb", "\t", "\x01", '"quoted"', '"a;b"', '"two\r\nlines"', '"open', "\u00a0", "\x85",
                           "\u2028"])
types = st.sampled_from(["Employee", "Job", "Operation", "Operation", "employee", " Job ", "Jobb", ""])
fields = st.tuples(st.lists(usual, max_size=28), st.one_of(st.none(), st.none(), st.none(), hostile),
                   st.integers(min_value=0, max_value=28)).map(
    lambda t: t[0] if t[1] is None else [*t[0][: t[2]], t[1], *t[0][t[2] :]])
lines = st.one_of(
    st.tuples(types, codes, fields).map(lambda t: ";".join([t[0], t[1], *t[2]])),
    st.tuples(st.just("Operation"), codes, st.sampled_from(["1", "2", "02", "1,0", "x", "", "1,23456"]), fields)
    .map(lambda t: ";".join([t[0], t[1], t[2], *t[3]])),
    st.sampled_from(["", ";;;", " \t ", "Employee", "Employee;E1;Anne;Street 1", "Job;J1;Job one;;01-12-2026",
                     "Operation;J1;1;OP;First;1,5;;;;;;0"]))
encoded = st.tuples(lines, st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8", "cp1252"])).map(
    lambda t: t[0].encode(t[1], errors="replace"))
ended = st.tuples(encoded, st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r", b""])).map(b"".join)
realistic = st.lists(st.one_of(*[ended] * 6, st.sampled_from(FRAGMENTS)), min_size=1, max_size=60).map(b"".join)
unchecked_kinds = st.sampled_from([MASTERS | OPERATIONS, OPERATIONS, frozenset()])


@examples(max_examples=1500, deadline=None, derandomize=True)
@given(data=realistic, chunk=st.one_of(st.integers(min_value=1, max_value=120), st.just(1 << 20)),
       unchecked=unchecked_kinds, bitmap=st.sampled_from([0, 1]))
def test_reading_in_passes_gives_what_parse_file_gives(data: bytes, chunk: int, unchecked: frozenset[RecordType],
                                                        bitmap: int) -> None:
    assert pass_differences(data, chunk, unchecked, bitmap) == []


@examples(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=files)
def test_fuzzed_files_through_the_function_end_with_a_receipt(storage, settings, sandbox, data: bytes) -> None:
    client = storage.get_blob_client(settings.input_container, "fuzz.csv")
    etag = client.upload_blob(data, overwrite=True)["etag"].strip('"')

    trigger_import(storage, settings.input_container, "fuzz.csv")  # must not raise

    receipt = json.loads(read_blob(storage, settings.archive_container, f"fuzz.csv/{etag}/receipt.json"))
    assert blob_names(storage, settings.input_container) == []
    if receipt["status"] != "rejected-file":
        assert sum(receipt["counts"].values()) == receipt["lines"]
    assert read_blob(storage, settings.archive_container if receipt["status"] != "rejected-file"
                     else settings.error_container,
                     (receipt["outputs"].get("archived_copy") or receipt["outputs"]["moved_to"]).split("/", 1)[1]) == data
