"""What every ``timebridge`` command shares: exit codes, the one-line error, safe names, lazy
settings and a storage check that fails in seconds instead of retrying for a minute and a half.

Exit codes (docs/administrator.md: the operator CLI):

====  ==========================================================================================
0     done; ``validate``: no line would be rejected
1     ``validate``: lines (or the whole file) would be rejected
2     usage: an unknown option, a missing file, a blob name Azure Storage cannot keep as written
3     configuration: a setting or secret missing or invalid, credentials refused, storage not
      initialised (no containers: ``timebridge init``)
4     operational: storage or the target cannot be reached, or failed
5     internal: TimeBridge stopped on an unexpected error (run again with ``--debug``)
====  ==========================================================================================
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from shared.errors import ConfigurationError, MissingSecretError, SecretStoreUnavailableError
from shared.platform.safe_text import has_hidden, json_visible, visible

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.platform.config import Settings

OK, REJECTED, USAGE, CONFIGURATION, OPERATIONAL, INTERNAL = 0, 1, 2, 3, 4, 5

#: Seconds to open a connection to storage / wait for its answer in the reachability check.
STORAGE_CONNECT_SECONDS = 5
STORAGE_READ_SECONDS = 20


class CliError(Exception):
    """A problem the administrator can act on: printed as one ``Error: … What to do: …`` line."""

    def __init__(self, message: str, what_to_do: str, exit_code: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.what_to_do = what_to_do
        self.exit_code = exit_code
        self.code = code

    def line(self) -> str:
        return one_line(f"Error: {_sentence(self.message)} What to do: {_sentence(self.what_to_do)}")

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "what_to_do": self.what_to_do,
                          "exit_code": self.exit_code}}


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def one_line(text: str) -> str:
    """``text`` for the terminal: hidden characters (ESC, BEL, line breaks …) shown as escapes."""
    return visible(text)


def dumps(data: Any) -> str:
    """JSON for stdout: hidden characters escaped as ``\\uXXXX`` (lossless; nothing raw reaches a terminal)."""
    return json_visible(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# --- settings --------------------------------------------------------------------------------------
def load_local_settings(path: Path | None) -> None:
    """``local.settings.json``'s ``Values`` into the environment (variables already set win)."""
    candidate = path or Path("local.settings.json")
    if not candidate.exists():
        if path is not None:
            raise CliError(f"The settings file {visible(path)} does not exist.",
                           "give --settings the path of a local.settings.json, or leave it out", USAGE, "usage")
        return
    try:
        document = json.loads(candidate.read_text(encoding="utf-8"))
        values = document.get("Values", {}) if isinstance(document, dict) else None
    except (ValueError, OSError) as exc:
        raise CliError(f"{visible(candidate)} cannot be read as JSON ({visible(exc)}).",
                       f"fix {visible(candidate)} (it is the Functions host's local.settings.json format)",
                       CONFIGURATION, "configuration") from None
    if not isinstance(values, dict):
        raise CliError(f"{visible(candidate)} has no \"Values\" object.",
                       'put the app settings under "Values", as in local.settings.json.example',
                       CONFIGURATION, "configuration")
    for name, value in values.items():
        os.environ.setdefault(str(name), str(value))


_ADVICE = re.compile(r"\.\s+(?=(?:Fix|Add|Set|Check|Grant|Give|Put|Use|Run) )")


def configuration_error(exc: ConfigurationError | MissingSecretError | SecretStoreUnavailableError) -> CliError:
    """A settings or secret error as message + what to do (its own advice, where it gives one)."""
    text = str(exc)
    # the advice: the last sentence that starts with an imperative, outside any parentheses
    splits = [m for m in _ADVICE.finditer(text) if text[: m.start()].count("(") == text[: m.start()].count(")")]
    if splits:
        message, action = text[: splits[-1].start() + 1], text[splits[-1].end():]
    else:
        message, action = text, ("fix the setting in local.settings.json or the environment (in Azure: Function "
                                 "app > Settings > Environment variables), then run the command again")
    code = "secret-store-unavailable" if isinstance(exc, SecretStoreUnavailableError) else "configuration"
    return CliError(message, action, CONFIGURATION, code)


def load_settings() -> Settings:
    """Every setting (what most commands need): a problem is a :class:`CliError` (exit 3)."""
    from shared.platform.config import load_settings as load

    try:
        return load()
    except ConfigurationError as exc:
        raise configuration_error(exc) from None


def load_some_settings(*fields: str) -> Any:
    """Only the named settings (fields of :class:`shared.platform.config.Settings`), validated as there:
    a command that needs no more (``validate --offline``) is not stopped by an unrelated broken setting."""
    from pydantic import ValidationError, create_model
    from pydantic_settings import BaseSettings

    from shared.platform.config import Settings

    class Subset(BaseSettings):
        model_config = Settings.model_config

    definitions: dict[str, Any] = {name: (Settings.model_fields[name].annotation, Settings.model_fields[name])
                                   for name in fields}
    subset: Any = create_model("SomeSettings", __base__=Subset, **definitions)
    try:
        return subset()
    except ValidationError as exc:
        problems = "; ".join(f"app setting {'.'.join(map(str, e['loc']))} = {visible(repr(e.get('input')))}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise CliError(f"A setting this command needs is invalid ({problems}).",
                       "fix the setting in local.settings.json or the environment, then run the command again",
                       CONFIGURATION, "configuration") from None


# --- names -----------------------------------------------------------------------------------------
MAX_BLOB_NAME = 1024


def check_blob_name(name: str) -> str:
    """A blob name the CLI uploads under: refused (exit 2) when Azure Storage would not keep it as
    written (``.`` / ``..`` segments, a leading ``/``, empty segments) or it holds hidden characters."""
    shown = f'"{visible(name)}"'
    advice = 'give --name a plain name such as "erp-corrected.csv" (folders as "2026/11/erp.csv")'
    segments = name.split("/")
    if not name.strip():
        problem = "is empty"
    elif len(name) > MAX_BLOB_NAME:
        problem = f"is {len(name):,} characters long; Azure Storage allows {MAX_BLOB_NAME:,}"
    elif any(segment in (".", "..") for segment in segments):
        problem = 'has a "." or ".." path segment, which would be resolved away before it reaches Azure Storage'
    elif name.startswith("/") or "" in segments:
        problem = "has an empty path segment (a leading, doubled or trailing /)"
    elif "\\" in name:
        problem = "holds a backslash, which some tools read as a folder separator"
    elif has_hidden(name):
        problem = "holds control or invisible characters (shown here as escapes)"
    elif name.endswith("."):
        problem = "ends with a dot, which Azure Storage advises against"
    else:
        return name
    raise CliError(f"The blob name {shown} {problem}.", advice, USAGE, "bad-blob-name")


# --- storage ---------------------------------------------------------------------------------------
def _endpoint(url: str) -> str:
    """A storage endpoint for a message: no query (a SAS token) and no user info, escaped visibly."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return visible(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _no_storage() -> CliError:
    return CliError(
        "No storage is configured: neither IntegrationStorage (a connection string, local development) nor "
        "IntegrationStorage__blobServiceUri (Azure) is set.",
        "set IntegrationStorage in local.settings.json (for Azurite: the connection string in "
        "local.settings.json.example) or IntegrationStorage__blobServiceUri in the environment, then run the "
        "command again",
        CONFIGURATION, "no-storage-setting")


def _fast_options() -> dict[str, Any]:
    return {"retry_total": 0, "connection_timeout": STORAGE_CONNECT_SECONDS, "read_timeout": STORAGE_READ_SECONDS}


def fast_blob_service(settings: Settings) -> BlobServiceClient:
    """A blob client that tries once, with short timeouts (the check; not for transfers)."""
    from azure.storage.blob import BlobServiceClient

    client: BlobServiceClient = _fast_client(settings, BlobServiceClient, settings.storage_blob_service_uri,
                                             _no_storage())
    return client


def fast_table_service(settings: Settings) -> TableServiceClient:
    """A table client that tries once, with short timeouts."""
    from azure.data.tables import TableServiceClient

    missing = CliError(
        "No table storage is configured: IntegrationStorage__tableServiceUri is not set.",
        "set IntegrationStorage__tableServiceUri (Azure) or IntegrationStorage (local), then run the command again",
        CONFIGURATION, "no-storage-setting")
    client: TableServiceClient = _fast_client(settings, TableServiceClient, settings.storage_table_service_uri, missing)
    return client


def _fast_client(settings: Settings, client_class: Any, uri: str | None, missing: CliError) -> Any:
    """``client_class`` from the connection string (local) or ``uri`` with the app's credential (Azure)."""
    from shared.platform.storage import credential

    try:
        if settings.storage_connection_string:
            return client_class.from_connection_string(settings.storage_connection_string, **_fast_options())
        if uri:
            return client_class(uri, credential=credential(settings), **_fast_options())
    except ValueError as exc:
        raise CliError(f"The storage setting IntegrationStorage is not a usable connection string ({visible(exc)}).",
                       "copy the connection string again (for Azurite: the one in local.settings.json.example)",
                       CONFIGURATION, "bad-storage-setting") from None
    raise missing


def storage_error(exc: Exception, endpoint: str) -> CliError:
    """An Azure SDK error as the administrator's problem (unreachable, refused, or failed)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, ServiceRequestError):
        cause = "connection refused" if "refused" in str(exc).lower() else visible(str(exc).splitlines()[0][:200])
        return CliError(
            f"The storage at {endpoint} cannot be reached ({cause}).",
            "start Azurite (locally: npx azurite --skipApiVersionCheck --disableTelemetry in the project folder), or "
            "check IntegrationStorage / IntegrationStorage__blobServiceUri and the network, then run the command "
            "again", OPERATIONAL, "storage-unreachable")
    if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)):
        return CliError(
            f"The storage at {endpoint} refused the credentials (HTTP {getattr(exc, 'status_code', '?')}).",
            "check the account key in IntegrationStorage, or (in Azure) that your identity has the role Storage "
            "Blob Data Contributor and Storage Table Data Contributor on the account", CONFIGURATION,
            "storage-credentials-refused")
    status = getattr(exc, "status_code", None)
    return CliError(
        f"The storage at {endpoint} failed ({type(exc).__name__}{f', HTTP {status}' if status else ''}).",
        "run the command again; if it fails again, run it with --debug and check the storage account",
        OPERATIONAL, "storage-failed")


@contextmanager
def storage_errors(settings: Settings) -> Iterator[None]:
    """Azure SDK errors raised inside as :class:`CliError` (for the commands' real transfers)."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        url = settings.storage_blob_service_uri or ""
        if settings.storage_connection_string:
            match = re.search(r"BlobEndpoint=([^;]+)", settings.storage_connection_string)
            url = match.group(1) if match else "the storage account"
        raise storage_error(exc, _endpoint(url) if "://" in url else url or "the storage account") from None


@dataclass
class StorageCheck:
    endpoint: str
    missing_containers: list[str]
    missing_tables: list[str]


def check_storage(settings: Settings, containers: Sequence[str] = (), tables: Sequence[str] = ()) -> StorageCheck:
    """Reach storage once, in seconds: a :class:`CliError` when it cannot be reached or refuses the
    credentials; which of ``containers`` and ``tables`` do not exist yet."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    service = fast_blob_service(settings)
    endpoint = _endpoint(service.url)
    missing: list[str] = []
    try:
        if not containers:
            service.get_service_properties()
        for name in containers:
            try:
                service.get_container_client(name).get_container_properties()
            except ResourceNotFoundError:
                missing.append(name)
    except AzureError as exc:
        raise storage_error(exc, endpoint) from None
    missing_tables: list[str] = []
    if tables:
        table_service = fast_table_service(settings)
        table_endpoint = _endpoint(table_service.url)
        try:
            existing = {table.name for table in table_service.list_tables()}
        except AzureError as exc:
            raise storage_error(exc, table_endpoint) from None
        missing_tables = [name for name in tables if name not in existing]
    return StorageCheck(endpoint, missing, missing_tables)


def require_storage(settings: Settings, containers: Sequence[str] = (), tables: Sequence[str] = ()) -> StorageCheck:
    """:func:`check_storage`, and a missing container or table is an error suggesting ``timebridge init``."""
    check = check_storage(settings, containers, tables)
    missing = [_listed("container", check.missing_containers), _listed("table", check.missing_tables)]
    missing = [part for part in missing if part]
    if missing:
        count = len(check.missing_containers) + len(check.missing_tables)
        raise CliError(
            f"The storage at {check.endpoint} is not set up for TimeBridge: {' and '.join(missing)} "
            f"{'does' if count == 1 else 'do'} not exist.",
            "run `timebridge init` to create the containers and tables (local storage such as Azurite); in Azure, "
            "run azd provision, which creates them",
            CONFIGURATION, "storage-not-initialised")
    return check


def _listed(kind: str, names: Sequence[str]) -> str:
    if not names:
        return ""
    return f"the {kind}{'s' if len(names) > 1 else ''} {', '.join(visible(name) for name in names)}"
