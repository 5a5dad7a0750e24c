"""The schedule domain's errors (all rendered by kit/handlers.py)."""

from __future__ import annotations

from saassy.kit.errors import Conflict, NotFound, ValidationFailed


class ScheduleNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Schedule")


class CadenceRequired(ValidationFailed):
    code = "cadence_required"

    def __init__(self) -> None:
        super().__init__(
            "cron: give exactly one of cron (an expression such as '0 9 * * mon-fri') and "
            "interval_s (seconds between runs).",
            field="cron",
        )


class InvalidCron(ValidationFailed):
    code = "invalid_cron"

    def __init__(self, expression: str, why: str) -> None:
        super().__init__(
            f"cron: {expression!r} is not a cron expression: {why}. Use five fields, such as "
            "'*/15 * * * *' (every 15 minutes) or '0 9 * * mon-fri'.",
            field="cron",
            details={"cron": expression},
        )


class UnknownTimeZone(ValidationFailed):
    code = "unknown_time_zone"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"timezone: {name!r} is not an IANA time zone; use a name such as 'Europe/Paris' "
            "or 'UTC'.",
            field="timezone",
            details={"timezone": name},
        )


class IntervalOutOfRange(ValidationFailed):
    code = "interval_out_of_range"

    def __init__(self, seconds: int, minimum: int, maximum: int) -> None:
        super().__init__(
            f"interval_s: {seconds} s is outside what a schedule may use "
            f"({minimum} s to {maximum} s).",
            field="interval_s",
            details={"interval_s": seconds, "minimum": minimum, "maximum": maximum},
        )


class TooManySchedules(Conflict):
    """The organization holds as many schedules as one may."""

    code = "schedule_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"An organization may have at most {limit} schedules; delete one to add another.",
            details={"limit": limit},
        )
