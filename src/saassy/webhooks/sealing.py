"""Endpoint secrets are sealed at rest with SAASSY_SECRET_KEY (like the e-mail outbox's bodies):
a copy of the database alone cannot sign a webhook. A new secret key leaves them unopenable:
rotate each endpoint's secret after changing it."""

from __future__ import annotations

from saassy.config import Settings
from saassy.kit.security import Sealer

SEAL_PURPOSE = "webhook-endpoint-secret"


def secret_sealer(settings: Settings) -> Sealer:
    return Sealer(settings.signing_secret, SEAL_PURPOSE)
