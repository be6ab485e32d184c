"""Tic-Tac's own app settings (read only when ``TARGET_SYSTEM=tictac``): the address, TimeBridge's share
of the daily calls, new users' userNames, and the export's rules."""

from __future__ import annotations

import string

from pydantic import Field, ValidationInfo, field_validator

from shared.platform.config import TargetSettings
from shared.platform.safe_text import visible

#: The placeholders a TICTAC_USERNAME_TEMPLATE may use.
USER_NAME_PLACEHOLDERS = frozenset({"email", "code", "prefix"})


def check_user_name_template(template: str) -> None:
    """Raise ValueError unless ``template`` is a :meth:`str.format` pattern over at least one of
    :data:`USER_NAME_PLACEHOLDERS` and nothing else (the mapping's rule for new userNames)."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        names = set()
    if not names or names - USER_NAME_PLACEHOLDERS:
        raise ValueError(f"the userName template may use {{email}}, {{code}} and {{prefix}}, not {template!r}")


def parse_pairs(text: str, setting: str) -> dict[str, str]:
    """``"A=X,B=Y"`` → ``{"A": "X", "B": "Y"}`` (keys upper case); a malformed pair is refused."""
    pairs: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{setting}: '{visible(part)}' is not TYPE=CODE (e.g. WORKHOURS=NORMAL)")
        pairs[key.strip().upper()] = value.strip()
    return pairs


class TicTacSettings(TargetSettings):
    base_url: str = Field(default="https://www.tictacmobile.com/api/rest", alias="TICTAC_BASE_URL")
    daily_call_budget: int = Field(
        default=400, alias="TICTAC_DAILY_CALL_BUDGET", ge=10, le=100_000,
        description="Calls TimeBridge allows itself per rolling 24 hours (Tic-Tac allows 500).",
    )
    username_template: str = Field(
        default="{email}", alias="TICTAC_USERNAME_TEMPLATE",
        description="userName of a new Tic-Tac user: {email}, {code}, {prefix}; else prefix + code.",
    )
    username_prefix: str = Field(default="", alias="TICTAC_USERNAME_PREFIX")

    # --- the export ----------------------------------------------------------------------
    export_attested_only: bool = Field(default=True, alias="TICTAC_EXPORT_ATTESTED_ONLY")
    absence_project_list: str = Field(
        default="", alias="TICTAC_ABSENCE_PROJECTS", max_length=2000,
        description="Project numbers (comma-separated) whose time is absence: TimeLedgerEntry only, Type Absence.",
    )
    worktype_pairs: str = Field(
        default="WORKHOURS=NORMAL,OVERTIME=OVERTIME1", alias="TICTAC_WORKTYPE_MAP", max_length=2000,
        description="Tic-Tac activity type → WorkTypeCode, as TYPE=CODE pairs separated by commas.",
    )
    export_lookback_days: int = Field(default=400, alias="TICTAC_EXPORT_LOOKBACK_DAYS", ge=1, le=3660)
    export_forward_days: int = Field(default=31, alias="TICTAC_EXPORT_FORWARD_DAYS", ge=0, le=366)
    reconcile_max_loss_percent: int = Field(
        default=20, alias="TICTAC_RECONCILE_MAX_LOSS_PERCENT", ge=0, le=100,
        description="A daily reconcile that misses more than this share of the exported rows it knew "
                    "produces no reversals; it stops and says so.",
    )

    @field_validator("base_url")
    @classmethod
    def _https_outside_this_machine(cls, value: str, info: ValidationInfo) -> str:
        return cls._https(value, info)

    @field_validator("username_template")
    @classmethod
    def _username_template(cls, value: str) -> str:
        try:
            check_user_name_template(value)
        except ValueError as exc:
            raise ValueError(f"TICTAC_USERNAME_TEMPLATE: {exc}") from None
        return value

    @field_validator("worktype_pairs")
    @classmethod
    def _worktype_map(cls, value: str) -> str:
        parse_pairs(value, "TICTAC_WORKTYPE_MAP")
        return value

    @property
    def worktype_map(self) -> dict[str, str]:
        """TICTAC_WORKTYPE_MAP as a dict (activity type, upper case → WorkTypeCode)."""
        return parse_pairs(self.worktype_pairs, "TICTAC_WORKTYPE_MAP")

    @property
    def absence_projects(self) -> frozenset[str]:
        """TICTAC_ABSENCE_PROJECTS as a set of project numbers."""
        return frozenset(part.strip() for part in self.absence_project_list.split(",") if part.strip())

    def call_budget_text(self) -> str:
        return f"TICTAC_DAILY_CALL_BUDGET = {self.daily_call_budget}"
