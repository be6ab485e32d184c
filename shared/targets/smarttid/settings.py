"""SmartTID's own app settings (read only when ``TARGET_SYSTEM=smarttid``)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from shared.platform.config import TargetSettings


class SmartTidSettings(TargetSettings):
    base_url: str = Field(default="https://smartapi.smarttid.dk", alias="SMARTTID_BASE_URL")
    device_id: str | None = Field(
        default=None,
        alias="SMARTTID_DEVICE_ID",
        description="DEVICEID header; empty = the customer key, as SmartTID's walkthrough shows.",
    )

    @field_validator("device_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("base_url")
    @classmethod
    def _https_outside_this_machine(cls, value: str, info: ValidationInfo) -> str:
        return cls._https(value, info)
