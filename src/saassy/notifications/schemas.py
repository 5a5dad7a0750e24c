"""The preferences API's bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from saassy.notifications.kinds import KINDS, NotificationKind


class PreferenceOut(BaseModel):
    kind: NotificationKind
    enabled: bool
    default: bool = Field(description="What applies until the user chooses.")
    label: str
    description: str


class PreferencesOut(BaseModel):
    preferences: list[PreferenceOut]

    @classmethod
    def of(cls, chosen: dict[NotificationKind, bool]) -> PreferencesOut:
        return cls(
            preferences=[
                PreferenceOut(
                    kind=kind,
                    enabled=chosen[kind],
                    default=info.default,
                    label=info.label,
                    description=info.description,
                )
                for kind, info in KINDS.items()
            ]
        )


class PreferencesUpdate(BaseModel):
    """The kinds to change, each on (true) or off (false); kinds left out keep their setting."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task_failed: bool | None = None
    quota_warning: bool | None = None
    quota_exhausted: bool | None = None
    webhook_disabled: bool | None = None
    payment_failed: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def chosen(cls, value: object) -> object:
        """null is not a choice: a kind is on (true) or off (false), or left out."""
        if value is None:
            raise ValueError("must be true or false (leave the kind out to keep its setting)")
        return value

    def changes(self) -> dict[NotificationKind, bool]:
        return {
            NotificationKind(name): value
            for name, value in self.model_dump(exclude_none=True).items()
        }
