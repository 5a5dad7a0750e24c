"""Quota counters per period and the reservations that move them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class ReservationStatus(StrEnum):
    reserved = "reserved"
    settled = "settled"
    released = "released"


class QuotaCounter(RecordMixin, Base):
    """How much of one metric an organization has used in one period (a month or a day)."""

    __tablename__ = "quota_counters"
    __table_args__ = (UniqueConstraint("organization_id", "metric", "period_start"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date]
    used: Mapped[int] = mapped_column(default=0)


class QuotaReservation(RecordMixin, Base):
    __tablename__ = "quota_reservations"
    # Billing reads an organization's settled tasks by the time they closed, window by window.
    __table_args__ = (
        Index("ix_quota_reservations_org_metric_closed", "organization_id", "metric", "closed_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date]
    amount: Mapped[int]
    status: Mapped[ReservationStatus] = mapped_column(
        String(16), default=ReservationStatus.reserved
    )
    settled_amount: Mapped[int | None]
    closed_at: Mapped[datetime | None]
