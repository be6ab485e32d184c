"""Call the registered functions the way the host does: found through ``app.get_functions()``."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient

import function_app

#: ``get_functions()`` builds the functions once per app; a second call raises, so enumerate once.
FUNCTIONS = {function.get_function_name(): function for function in function_app.app.get_functions()}


def registered(name: str):  # type: ignore[no-untyped-def]
    assert name in FUNCTIONS, f"function {name} is not registered"
    return FUNCTIONS[name]


def trigger_import(service: BlobServiceClient, container: str, name: str) -> None:
    """Invoke the blob-trigger function with the SDK BlobClient the host would pass."""
    registered("import_file").get_user_function()(client=service.get_blob_client(container, name))


def trigger_validate(service: BlobServiceClient, container: str, name: str) -> None:
    """Invoke the validate drop zone's blob trigger the way the host would."""
    registered("validate_file").get_user_function()(client=service.get_blob_client(container, name))
