"""What an export request or download can be refused with.

ExportNotFound        404  not_found (also: another user's export)
ExportInProgress      409  export_in_progress (one unfinished export per user)
ExportNotReady        409  export_not_ready (queued, running or failed)
ExportsRateLimited    429  rate_limited (SAASSY_EXPORT_LIMIT_PER_DAY, with Retry-After)
ExportExpired         410  export_expired (its archive was removed)
"""

from __future__ import annotations

import uuid

from saassy.kit.errors import Conflict, NotFound, RateLimited, SaassyError


class ExportNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Export")


class ExportInProgress(Conflict):
    code = "export_in_progress"

    def __init__(self, export_id: uuid.UUID) -> None:
        super().__init__(
            "An export you requested is still being prepared; wait for its e-mail, then ask "
            "for another if you need one.",
            details={"export_id": str(export_id)},
        )


class ExportNotReady(Conflict):
    code = "export_not_ready"


class ExportsRateLimited(RateLimited):
    def __init__(self, retry_after_s: int, limit: int) -> None:
        super().__init__(retry_after_s, f"You may request {limit} data exports in 24 hours.")


class ExportExpired(SaassyError):
    status_code = 410
    code = "export_expired"

    def __init__(self) -> None:
        super().__init__("This export has expired and its archive was removed; request a new one.")
