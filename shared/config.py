"""Application settings, read from app settings / environment variables.

Every name here is an Azure Functions app setting. The README, ``local.settings.json.example``
and ``infra/app/function.bicep`` list the same names; ``tests/test_infra.py`` keeps them in step.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Blob container names: 3-63 chars, lowercase letters, digits and single dashes.
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")


class TargetSystem(StrEnum):
    SMARTTID = "smarttid"


class ExportEncoding(StrEnum):
    UTF8_BOM = "utf-8-sig"
    WINDOWS_1252 = "cp1252"


class Settings(BaseSettings):
    """All non-secret configuration. Secrets live in :mod:`shared.secrets`."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

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
    max_file_bytes: int = Field(default=50 * 1024 * 1024, alias="MAX_FILE_BYTES", gt=0)

    # --- target system -------------------------------------------------------------------
    target_system: TargetSystem = Field(default=TargetSystem.SMARTTID, alias="TARGET_SYSTEM")
    smarttid_base_url: str = Field(default="https://smartapi.smarttid.dk", alias="SMARTTID_BASE_URL")
    smarttid_device_id: str | None = Field(
        default=None,
        alias="SMARTTID_DEVICE_ID",
        description="DEVICEID header; empty = the customer key, as SmartTID's walkthrough shows.",
    )
    http_timeout_seconds: float = Field(default=30.0, alias="HTTP_TIMEOUT_SECONDS", gt=0)
    http_max_attempts: int = Field(default=5, alias="HTTP_MAX_ATTEMPTS", ge=1, le=10)
    write_concurrency: int = Field(default=4, alias="WRITE_CONCURRENCY", ge=1, le=32)

    # --- export --------------------------------------------------------------------------
    export_schedule: str = Field(default="0 */15 * * * *", alias="EXPORT_SCHEDULE")
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
        "smarttid_device_id",
        "key_vault_url",
        "azure_client_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("input_container", "output_container", "error_container", "archive_container")
    @classmethod
    def _valid_container_name(cls, value: str) -> str:
        if not (3 <= len(value) <= 63 and _CONTAINER_NAME.match(value)):
            raise ValueError(
                f"'{value}' is not a valid blob container name: use 3-63 lowercase letters, digits "
                "and single dashes, starting and ending with a letter or digit"
            )
        return value

    @cached_property
    def containers(self) -> tuple[str, str, str, str]:
        return (self.input_container, self.output_container, self.error_container, self.archive_container)


def setting_names() -> set[str]:
    """Every app-setting name the code reads (used to cross-check infra and docs)."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        if field.alias:
            names.add(field.alias)
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice) for choice in field.validation_alias.choices)
    return names


def load_settings() -> Settings:
    """Read settings from the environment. Raises ``ConfigurationError`` with a readable text."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"app setting {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(
            f"The function app is misconfigured ({problems}). Fix the app setting in the Azure portal "
            "(Function app > Settings > Environment variables) or in local.settings.json."
        ) from None


class ConfigurationError(RuntimeError):
    """A setting is missing or invalid; the message tells the administrator what to change."""
