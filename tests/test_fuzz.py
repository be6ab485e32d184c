"""Property-based tests of the import: fuzzed files never raise, and every line ends applied or
reported. Bounded example counts keep CI fast; ``bench/fuzz_import.py`` runs a million inputs."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.conftest import blob_names, read_blob
from tests.functions_host import trigger_import
from tests.support.fuzzing import FRAGMENTS, problems

pieces = st.one_of(st.sampled_from(FRAGMENTS), st.binary(min_size=1, max_size=4))
files = st.lists(pieces, min_size=1, max_size=40).map(b"".join)


@examples(max_examples=1500, deadline=None, derandomize=True)
@given(data=files, chunk=st.integers(min_value=1, max_value=64))
def test_the_parser_accounts_for_every_line_of_any_input(data: bytes, chunk: int) -> None:
    assert problems(data, chunk) == []


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
