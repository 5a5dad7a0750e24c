"""What a finished run makes of its attempt: how the sandbox ended, then what the program left.

Everything the program left was written by untrusted code, so reading it may fail in any way:
every failure becomes the attempt's outcome (`invalid_output`, failed, not retried) with the
usage the kernel measured, never an exception out of the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from saassy.dispatch.attempt_setup import AttemptSetup
from saassy.dispatch.outcome import AttemptOutcome
from saassy.dispatch.progress import progress_json
from saassy.dispatch.worker_output import InvalidOutput, read_events, read_result
from saassy.models import AttemptStatus
from saassy.runtime.base import EndReason, Exit, Usage
from saassy.runtime.redaction import Redactor

log = structlog.get_logger(__name__)

INVALID_OUTPUT = "invalid_output"
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class FinishedRun:
    """A sandbox that ended: how, what it used, where it left its output."""

    exit: Exit
    canceled: bool
    usage: Usage | None
    output_dir: Path
    events_file: Path
    timeout_s: int


def run_outcome(
    run: FinishedRun, setup: AttemptSetup, attempt_number: int, now: datetime, redactor: Redactor
) -> AttemptOutcome:
    """The attempt's outcome; any failure to read the program's output is `invalid_output`."""
    try:
        return _read_outcome(run, setup, attempt_number, now, redactor)
    except Exception as exc:
        if not isinstance(exc, InvalidOutput):
            log.exception("output not readable", attempt=attempt_number)
        return invalid_output(ended_run(run), exc)


def ended_run(run: FinishedRun) -> AttemptOutcome:
    """The bare facts of the run (failed until shown otherwise), with its measured usage."""
    return AttemptOutcome(
        AttemptStatus.failed,
        exit_code=run.exit.exit_code,
        end_reason=run.exit.reason.value,
        usage=run.usage,
    )


def invalid_output(outcome: AttemptOutcome, why: BaseException | str) -> AttemptOutcome:
    """Failed for its output: the usage and the actions performed stay, nothing it wrote does."""
    return AttemptOutcome(
        AttemptStatus.failed,
        output_error(why),
        INVALID_OUTPUT,
        exit_code=outcome.exit_code,
        end_reason=outcome.end_reason,
        usage=outcome.usage,
        sandbox_started=outcome.sandbox_started,
        actions=outcome.actions,
    )


def output_error(why: BaseException | str) -> str:
    """A message that says what was wrong and is itself storable text."""
    if isinstance(why, str | InvalidOutput):
        text = str(why)
    else:
        text = f"the program's output could not be read ({type(why).__name__}: {why})"
    text = text.encode(errors="backslashreplace").decode().replace("\x00", "\\x00")
    return text[:MAX_ERROR_CHARS]


def refused_by_database(exc: BaseException) -> str:
    """The driver's reason, without the statement and its parameters SQLAlchemy appends."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (reason[0] if reason else type(exc).__name__)[:200]


def _read_outcome(
    run: FinishedRun, setup: AttemptSetup, attempt_number: int, now: datetime, redactor: Redactor
) -> AttemptOutcome:
    reported = read_events(run.events_file, setup.actions, setup.max_unit_names)
    final_progress = None
    if reported.progress is not None:
        final_progress = progress_json(reported.progress, attempt_number, now, redactor)

    def ended(
        status: AttemptStatus,
        error: str | None = None,
        code: str | None = None,
        *,
        retryable: bool = False,
        result: Any = None,
    ) -> AttemptOutcome:
        return AttemptOutcome(
            status,
            error,
            code,
            exit_code=run.exit.exit_code,
            end_reason=run.exit.reason.value,
            usage=run.usage,
            result=result,
            retryable=retryable,
            actions=reported.actions,
            units=reported.units,
            progress=final_progress,
        )

    exit_ = run.exit
    if run.canceled:
        return ended(AttemptStatus.canceled, "canceled while running", "canceled")
    if exit_.reason is EndReason.timed_out:
        error = f"exceeded its timeout of {run.timeout_s} s"
        return ended(AttemptStatus.timed_out, error, "timed_out", retryable=True)
    if exit_.reason is EndReason.out_of_memory:
        error = f"ran out of memory (limit {setup.limits.memory_mb} MB)"
        return ended(AttemptStatus.failed, error, "out_of_memory")
    if not exit_.succeeded:
        how = (
            f"exited with code {exit_.exit_code}"
            if exit_.exit_code is not None
            else f"was killed by signal {exit_.signal}"
        )
        return ended(AttemptStatus.failed, f"the program {how}", "exit_code", retryable=True)
    return ended(AttemptStatus.succeeded, result=read_result(run.output_dir))
