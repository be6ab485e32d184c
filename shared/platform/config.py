"""Application settings, read from app settings / environment variables.

Every name here is an Azure Functions app setting. docs/administrator.md ("Settings"), ``local.settings.json.example``
and ``infra/app/function.bicep`` list the same names; ``tests/test_infra.py`` keeps them in step.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import TypeVar
from urllib.parse import urlsplit

from croniter import croniter
from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError
from shared.platform.safe_text import visible

log = logging.getLogger(__name__)

#: Settings whose value is never repeated in an error message (a connection string can hold a key).
_NEVER_SHOWN = {"IntegrationStorage"}

# Blob container names: 3-63 chars, lowercase letters, digits and single dashes.
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")

#: host.json's ``functionTimeout`` (00:30:00); tests/test_settings.py keeps the two in step.
FUNCTION_TIMEOUT_SECONDS = 30 * 60
#: What an import needs after it stops writing: store the deferred lines, the reports and the receipt.
IMPORT_WRAP_UP_SECONDS = 5 * 60
#: The largest MAX_FILE_BYTES: what the largest Flex Consumption instance (4,096 MB, infra/main.bicep
#: ``instanceMemoryMB``) allows by the rule in docs/design.md (Large files: a file whose every line is rejected,
#: 0.73 KiB a line, stays below half of the instance), 140 MiB; a larger file may not fit at all.
MAX_FILE_BYTES_CAP = 140 * 1024 * 1024
#: Key Vault DNS suffixes of the Azure clouds (https://<vault name>.<suffix>/).
KEY_VAULT_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".vault.microsoftazure.de")


class CorrectionDate(StrEnum):
    """The Date of correction lines (reversal and repost of a changed Tic-Tac row)."""

    ORIGINAL = "original"  # the registration's own date
    RUN = "run"  # the export run's date (ERPs whose old periods are closed)


class ExportEncoding(StrEnum):
    UTF8_BOM = "utf-8-sig"
    WINDOWS_1252 = "cp1252"


class AppSettings(BaseSettings):
    """App settings read from the environment (Azure: the function app's settings): each field's alias is
    the setting's name. :class:`Settings` holds TimeBridge's own; each target package adds a
    :class:`TargetSettings` of its own (read only when ``TARGET_SYSTEM`` names that target)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    @classmethod
    def _setting_name(cls, info: ValidationInfo) -> str:
        """The app-setting name of the field being validated (its alias)."""
        return str(cls.model_fields[str(info.field_name)].alias)

    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        """For a target's base-URL validator: :func:`require_https` naming the setting and its default."""
        return require_https(value, cls._setting_name(info),
                             default=str(cls.model_fields[str(info.field_name)].default))


S = TypeVar("S", bound=AppSettings)


class TargetSettings(AppSettings):
    """A target's own settings (the base has none). Read with :func:`read_settings`."""

    def call_budget_text(self) -> str | None:
        """``"SETTING = value"`` of the target's daily call budget, for messages; None: not limited."""
        return None


class Settings(AppSettings):
    """All non-secret configuration but the target's own. Secrets live in :mod:`shared.platform.secrets`."""

    # --- storage -------------------------------------------------------------------------
    storage_connection_string: str | None = Field(
        default=None,
        alias="IntegrationStorage",
        description="Connection string (local development / Azurite only).",
    )
    storage_blob_service_uri: str | None = Field(
        default=None,
        alias="IntegrationStorage__blobServiceUri",
        description="Blob endpoint for identity-based access in Azure.",
    )
    storage_table_service_uri: str | None = Field(
        default=None,
        alias="IntegrationStorage__tableServiceUri",
        description="Table endpoint for identity-based access in Azure (export ledger).",
    )
    input_container: str = Field(default="input", alias="INPUT_CONTAINER")
    output_container: str = Field(default="output", alias="OUTPUT_CONTAINER")
    error_container: str = Field(default="error", alias="ERROR_CONTAINER")
    archive_container: str = Field(default="archive", alias="ARCHIVE_CONTAINER")
    export_state_container: str = Field(
        default="export-state", alias="EXPORT_STATE_CONTAINER",
        description="The export's own bookkeeping (lock, staged runs, receipts), apart from the ERP's files.",
    )
    validate_container: str = Field(
        default="validate", alias="VALIDATE_CONTAINER",
        description="Dry-run drop zone: a file dropped here gets a report of what it would do, and is removed.",
    )
    #: 64 MiB: a file whose every line is rejected (0.73 KiB a line, bench/scale_bench.py --rejected) then
    #: needs at most half of the 2,048 MB Flex Consumption instance infra/ provisions (docs/design.md: Large files).
    #: At most MAX_FILE_BYTES_CAP (the same rule for the largest instance, 4,096 MB).
    max_file_bytes: int = Field(default=64 * 1024 * 1024, alias="MAX_FILE_BYTES", gt=0)
    import_time_limit_seconds: int = Field(
        default=1500, alias="IMPORT_TIME_LIMIT_SECONDS", ge=1,
        description="An import stops writing after this long and defers the rest (within host.json's functionTimeout).",
    )

    # --- target system -------------------------------------------------------------------
    target_system: str = Field(default="smarttid", alias="TARGET_SYSTEM", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    xref_table: str = Field(default="crossref", alias="XREF_TABLE", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    budget_table: str = Field(default="callbudget", alias="BUDGET_TABLE", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    http_timeout_seconds: float = Field(default=30.0, alias="HTTP_TIMEOUT_SECONDS", gt=0)
    http_max_attempts: int = Field(default=5, alias="HTTP_MAX_ATTEMPTS", ge=1, le=10)
    max_answer_bytes: int = Field(
        default=32 * 1024 * 1024, alias="MAX_ANSWER_BYTES", ge=64 * 1024, le=512 * 1024 * 1024,
        description="The largest answer read from the target; a longer one is refused while it streams in.",
    )
    write_concurrency: int = Field(default=4, alias="WRITE_CONCURRENCY", ge=1, le=32)

    # --- export --------------------------------------------------------------------------
    export_schedule: str = Field(default="0 */15 * * * *", alias="EXPORT_SCHEDULE")
    resume_schedule: str = Field(
        default="0 */15 * * * *", alias="RESUME_SCHEDULE",
        description="NCRONTAB schedule of the timer that applies lines deferred for a target's call budget.",
    )
    export_encoding: ExportEncoding = Field(default=ExportEncoding.UTF8_BOM, alias="EXPORT_ENCODING")
    export_decimal_separator: str = Field(default=",", alias="EXPORT_DECIMAL_SEPARATOR", pattern=r"^[,.]$")
    export_write_empty_file: bool = Field(default=False, alias="EXPORT_WRITE_EMPTY_FILE")
    export_ledger_table: str = Field(
        default="exportledger", alias="EXPORT_LEDGER_TABLE", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$"
    )
    export_mark_batch_size: int = Field(default=100, alias="EXPORT_MARK_BATCH_SIZE", ge=1, le=1000)
    export_inactive_grace_days: int = Field(
        default=62,
        alias="EXPORT_INACTIVE_GRACE_DAYS",
        ge=0,
        le=3660,
        description="Days an inactive employee's time ledger is still read (leavers' last hours).",
    )
    export_correction_date: CorrectionDate = Field(
        default=CorrectionDate.ORIGINAL, alias="EXPORT_CORRECTION_DATE",
        description="Date of Tic-Tac correction lines: the registration's own date, or the run's date.",
    )

    # --- personal data -------------------------------------------------------------------
    send_cpr_number: bool = Field(
        default=False,
        alias="SEND_CPR_NUMBER",
        description="Send the CPR number (Employee position 8) to the target system; off = dropped before sending.",
    )

    # --- secrets -------------------------------------------------------------------------
    key_vault_url: str | None = Field(default=None, alias="KEY_VAULT_URL")
    secret_cache_ttl_seconds: float = Field(default=300.0, alias="SECRET_CACHE_TTL_SECONDS", ge=0)
    azure_client_id: str | None = Field(
        default=None,
        alias="AZURE_CLIENT_ID",
        description="Client id of the user-assigned managed identity (Azure only).",
    )

    @field_validator(
        "storage_connection_string",
        "storage_blob_service_uri",
        "storage_table_service_uri",
        "key_vault_url",
        "azure_client_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("input_container", "output_container", "error_container", "archive_container",
                     "validate_container", "export_state_container")
    @classmethod
    def _valid_container_name(cls, value: str) -> str:
        if not (3 <= len(value) <= 63 and _CONTAINER_NAME.match(value)):
            raise ValueError(
                f"'{visible(value)}' is not a valid blob container name: use 3-63 lowercase letters, digits "
                "and single dashes, starting and ending with a letter or digit"
            )
        return value

    @field_validator("key_vault_url")
    @classmethod
    def _key_vault_address(cls, value: str | None) -> str | None:
        return None if value is None else require_key_vault_url(value)

    @field_validator("max_file_bytes")
    @classmethod
    def _file_fits_an_instance(cls, value: int) -> int:
        if value > MAX_FILE_BYTES_CAP:
            raise ValueError(
                f"MAX_FILE_BYTES is {value:,} bytes; at most {MAX_FILE_BYTES_CAP:,} (140 MiB) is accepted: a file "
                "whose lines are all rejected needs up to half of the largest Flex Consumption instance (4,096 MB) "
                "at that size (docs/design.md: Large files). Split larger files in the ERP, or set MAX_FILE_BYTES to "
                f"{MAX_FILE_BYTES_CAP:,} or less (default 67,108,864 = 64 MiB)"
            )
        return value

    @field_validator("import_time_limit_seconds")
    @classmethod
    def _import_ends_before_the_host_stops_it(cls, value: int) -> int:
        limit = FUNCTION_TIMEOUT_SECONDS - IMPORT_WRAP_UP_SECONDS
        if value > limit:
            raise ValueError(
                f"IMPORT_TIME_LIMIT_SECONDS is {value:,}; at most {limit:,} is accepted: host.json stops a function "
                f"after {FUNCTION_TIMEOUT_SECONDS // 60} minutes (functionTimeout), and an import needs "
                f"{IMPORT_WRAP_UP_SECONDS // 60} minutes after it stops writing to store its deferred lines, "
                f"reports and receipt. Set IMPORT_TIME_LIMIT_SECONDS to {limit:,} or less (default 1500)"
            )
        return value

    @field_validator("export_schedule", "resume_schedule")
    @classmethod
    def _ncrontab(cls, value: str, info: ValidationInfo) -> str:
        name = cls._setting_name(info)
        return require_schedule_floor(require_ncrontab(value, name), name)

    @model_validator(mode="after")
    def _export_state_apart_from_the_erp_files(self) -> Settings:
        if self.export_state_container == self.output_container:
            raise ValueError(
                f"EXPORT_STATE_CONTAINER is '{self.export_state_container}', the same container as "
                "OUTPUT_CONTAINER: the export's lock, staged runs and receipts would sit beside the ledger files "
                "the ERP picks up. Set EXPORT_STATE_CONTAINER to a container of its own (default 'export-state')"
            )
        return self

    @model_validator(mode="after")
    def _validate_container_is_its_own(self) -> Settings:
        clashes = [
            str(field.alias) for name, field in type(self).model_fields.items()
            if name.endswith("_container") and name not in ("validate_container", "input_container")
            and getattr(self, name) == self.validate_container
        ]
        if clashes:
            raise ValueError(
                f"VALIDATE_CONTAINER is '{self.validate_container}', the same container as {' and '.join(clashes)}. "
                "Every file in the validate container is removed once its dry-run report is stored, so TimeBridge's "
                "own files there would be lost. Set VALIDATE_CONTAINER to a container of its own (default "
                "'validate')"
            )
        return self

    @model_validator(mode="after")
    def _input_container_is_its_own(self) -> Settings:
        # Every other *_container setting, including any added later: the app writes to all of them.
        others = {
            str(field.alias): getattr(self, name)
            for name, field in type(self).model_fields.items()
            if name.endswith("_container") and name != "input_container"
        }
        clashes = [name for name, container in others.items() if container == self.input_container]
        if clashes:
            raise ValueError(
                f"INPUT_CONTAINER is '{self.input_container}', the same container as {' and '.join(clashes)}. "
                "Every file TimeBridge writes there (export files, error reports, archived copies) would be "
                "imported again, and each import writes another file, in an endless loop. Set INPUT_CONTAINER "
                "to the container the ERP drops files into (default 'input') and give OUTPUT_CONTAINER, "
                "ERROR_CONTAINER and ARCHIVE_CONTAINER other containers (defaults 'output', 'error', 'archive')"
            )
        return self

    @model_validator(mode="after")
    def _containers_pairwise_distinct(self) -> Settings:
        # Checked after the specific refusals above (they explain their own case better).
        seen: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            if not name.endswith("_container"):
                continue
            container, setting = getattr(self, name), str(field.alias)
            if container in seen:
                raise ValueError(
                    f"{seen[container]} and {setting} are both '{container}'. Each of the six containers needs "
                    "its own: they differ in who may read them and how long files are kept (OUTPUT_CONTAINER is "
                    "read by the ERP's identity, ARCHIVE_CONTAINER keeps the original files with their CPR numbers "
                    "for archiveRetentionDays, ERROR_CONTAINER and EXPORT_STATE_CONTAINER have retention rules of "
                    f"their own). Set {setting} to a container of its own (defaults: input, output, error, archive, "
                    "validate, export-state)"
                )
            seen[container] = setting
        return self

    @cached_property
    def tables(self) -> tuple[str, ...]:
        """The tables the app uses (infra/ creates them; locally ``python -m tools.timebridge init``)."""
        return (self.export_ledger_table, self.xref_table, self.budget_table)

    @cached_property
    def containers(self) -> tuple[str, ...]:
        return (self.input_container, self.output_container, self.error_container, self.archive_container,
                self.validate_container, self.export_state_container)


#: Hosts where plain http never leaves the machine (the SmartAPI sandbox in tests and the demo).
_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown_url(value: str) -> str:
    """The URL for a message: user:password@ removed (no secret in an error text), escaped visibly."""
    parts = urlsplit(value.strip())
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
    return visible(parts.geturl())


def require_https(value: str, setting: str, *, default: str) -> str:
    """The target's base URL: ``https://``, or ``http://`` to this machine only (local development).
    ``default``: the setting's default address, quoted in the refusal."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    shown = _shown_url(value)
    if parts.scheme == "https" and host:
        return value.strip()
    if parts.scheme == "http" and host and _is_loopback(host):
        return value.strip()
    if parts.scheme == "http" and host:
        raise ValueError(
            f"{setting} is '{shown}', a plain http:// address of another machine. TimeBridge sends the API "
            f"keys with every request, so they would travel unencrypted. Set {setting} to the https:// "
            f"address (default '{default}'); http:// is accepted only for localhost / "
            "127.0.0.1 (local development with the sandbox)"
        )
    raise ValueError(
        f"{setting} is '{shown}', which is not an https:// address. Set {setting} to the target's https:// "
        f"address, e.g. '{default}'"
    )


def require_key_vault_url(value: str) -> str:
    """KEY_VAULT_URL: ``https://<vault name>.vault.azure.net/`` (or another Azure cloud's vault
    suffix); a loopback host only for local development (a vault stub)."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    shown = _shown_url(value)
    problem = ""
    if parts.scheme != "https" or not host:
        problem = "not an https:// address"
    elif parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        problem = "more than the vault's address (a path, a query or a user name)"
    elif not (host.endswith(KEY_VAULT_SUFFIXES) or _is_loopback(host)):
        problem = "not a Key Vault address (the host should end in .vault.azure.net)"
    if problem:
        raise ValueError(
            f"KEY_VAULT_URL is '{shown}', {problem}. Set KEY_VAULT_URL to the vault's URI as the portal shows it "
            "(Key vault > Overview > Vault URI), e.g. 'https://kv-timebridge.vault.azure.net/'; with azd it is "
            "set for you. Leave it empty only for local development (secrets from app settings)"
        )
    return value.strip()


_NCRONTAB_FIELDS = "{second} {minute} {hour} {day} {month} {day-of-week}"


def require_ncrontab(value: str, setting: str) -> str:
    """A six-field NCRONTAB expression as the Functions timer trigger reads it (seconds first).

    Validated with croniter (``second_at_beginning``); the field count is checked here because
    croniter also accepts five fields (no seconds) and seven (a year), which Azure Functions does not.
    """
    text = value.strip()
    shown = visible(value)
    fields = text.split()
    if len(fields) != 6:
        hint = ""
        if len(fields) == 5:
            hint = " It has five fields, as in Unix cron: put the seconds first, e.g. '0 " + visible(text) + "'."
        elif re.fullmatch(r"\d+(?:\.\d+)?:\d{2}:\d{2}", text):
            hint = " A TimeSpan (hh:mm:ss) works only on an App Service plan, not on Flex Consumption."
        raise ValueError(
            f"{setting} is '{shown}', which is not an NCRONTAB expression: Azure Functions expects six fields, "
            f"{_NCRONTAB_FIELDS}, in UTC.{hint} Set {setting} to e.g. '0 */15 * * * *' (every 15 minutes)"
        )
    if not croniter.is_valid(text, second_at_beginning=True):
        raise ValueError(
            f"{setting} is '{shown}', which is not a valid NCRONTAB expression (a field is out of range or "
            f"malformed; the fields are {_NCRONTAB_FIELDS}, in UTC). Set {setting} to e.g. '0 */15 * * * *' "
            "(every 15 minutes) or '0 0 6 * * Mon-Fri' (06:00 UTC on weekdays)"
        )
    return text


#: The shortest time between two runs of a timer (EXPORT_SCHEDULE, RESUME_SCHEDULE): every run reads
#: the target (Tic-Tac allows 500 calls a day) and takes the export lock; a run may take minutes.
SCHEDULE_FLOOR = timedelta(minutes=5)
#: Where the floor is checked: the first fires from a fixed moment (no wall clock: the answer never
#: changes), and the fires around each month's turn of one year (a day-of-month list can put two
#: fires close together only there).
_FLOOR_START = datetime(2026, 1, 1, tzinfo=UTC)
_FLOOR_FIRES = 3000


def require_schedule_floor(value: str, setting: str) -> str:
    """A valid NCRONTAB ``value`` whose fire times are never closer than :data:`SCHEDULE_FLOOR`."""
    closest = _closest_fires(value)
    if closest is not None:
        previous, moment = closest
        gap = int((moment - previous).total_seconds())
        raise ValueError(
            f"{setting} is '{visible(value)}', which fires {gap} second(s) apart (at "
            f"{previous:%Y-%m-%d %H:%M:%S} and {moment:%H:%M:%S} UTC); TimeBridge needs at least "
            f"{SCHEDULE_FLOOR.seconds // 60} minutes between two runs (each run calls the target system, "
            f"whose calls may be limited, and may take minutes). Set {setting} to e.g. '0 */15 * * * *' "
            "(every 15 minutes) or '0 */5 * * * *' (every 5 minutes, the shortest accepted)"
        )
    return value


@lru_cache(maxsize=16)
def _closest_fires(value: str) -> tuple[datetime, datetime] | None:
    """The first two fire times of ``value`` closer than the floor, or None (a tenth of a second for a
    dense schedule: cached, as settings are read on every invocation)."""
    windows = [(_FLOOR_START, _FLOOR_START + timedelta(days=400), _FLOOR_FIRES)]
    for month in range(1, 14):
        turn = datetime(2026 + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)
        windows.append((turn - timedelta(hours=1), turn + timedelta(hours=1), 40))
    for start, end, most in windows:
        fires = croniter(value, start - timedelta(seconds=1), ret_type=datetime, second_at_beginning=True)
        previous: datetime | None = None
        for _ in range(most):
            moment = fires.get_next(datetime)
            if moment > end:
                break
            if previous is not None and moment - previous < SCHEDULE_FLOOR:
                return previous, moment
            previous = moment
    return None


def setting_names(*models: type[AppSettings]) -> set[str]:
    """Every app-setting name the models read (default: :class:`Settings`; all of them, the targets' too:
    ``shared.targets.registry.all_setting_names``), used to cross-check infra and docs."""
    names: set[str] = set()
    for model in models or (Settings,):
        for field in model.model_fields.values():
            if field.alias:
                names.add(field.alias)
            if isinstance(field.validation_alias, AliasChoices):
                names.update(str(choice) for choice in field.validation_alias.choices)
    return names


def load_settings() -> Settings:
    """Read settings from the environment. Raises ``ConfigurationError`` with a readable text."""
    return read_settings(Settings)


def read_settings(model: type[S]) -> S:
    """Read ``model``'s settings from the environment; ``ConfigurationError`` names every problem."""
    from pydantic import ValidationError

    try:
        return model()
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigurationError(
            f"The function app is misconfigured ({problems}). Fix the app setting in the Azure portal "
            "(Function app > Settings > Environment variables) or in local.settings.json; with azd, change "
            "the matching parameter of infra/main.bicep and run azd provision."
        ) from None


def _describe(error: ErrorDetails) -> str:
    """One problem: the setting, its value (unless it may hold a secret) and what is wrong."""
    message = error["msg"].removeprefix("Value error, ")
    location = ".".join(str(p) for p in error["loc"])
    if not location or location in message:  # the message already names the setting(s)
        return message
    if location in _NEVER_SHOWN:
        return f"app setting {location}: {message}"
    return f"app setting {location} = {visible(repr(error.get('input')))}: {message}"


def report_configuration_problems(check: Callable[[Settings], None] | None = None) -> ConfigurationError | None:
    """At start-up (function_app.py): log the configuration error, if any, without raising.

    An exception while the host indexes the functions would hide every function in the portal, so
    the refusal is a log line at start-up (an ERROR in the log stream and Application Insights) and
    every invocation then fails at once with the same :class:`ConfigurationError`.
    """
    try:
        settings = load_settings()
        if check is not None:  # what the layers above check (the target named by TARGET_SYSTEM)
            check(settings)
    except ConfigurationError as exc:
        log.error("TimeBridge refuses to run until the configuration is fixed: %s", exc)
        return exc
    except Exception:  # never let start-up raise: that would hide every function
        log.exception("TimeBridge could not check its configuration at start-up")
    return None

