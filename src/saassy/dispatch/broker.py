"""The Celery broker: only a wake-up for workers; the database stays the source of truth.

A message names an attempt the scheduler claimed (identity only: no input, no secrets); the
worker re-reads everything from the database and runs the local executor's supervisor. Late
acks and reject-on-worker-lost keep a message until its attempt ended; a redelivered or
duplicate message finds the attempt no longer the sender's to hand over and runs nothing.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog
from celery import Celery  # type: ignore[import-untyped]
from kombu import Connection  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from saassy.config import ConfigError, ExecutorKind, Settings

log = structlog.get_logger(__name__)

RUN_ATTEMPT = "saassy.run_attempt"
# Beyond the longest timeout and a lease: storing artifacts and writing the outcome.
HARD_LIMIT_MARGIN_S = 60
RABBITMQ_CONSUMER_TIMEOUT_S = 1800  # RabbitMQ's default consumer_timeout
CONNECT_TIMEOUT_S = 3.0


class AttemptMessage(BaseModel):
    """What travels through the broker: which attempt, and which scheduler leased it."""

    model_config = ConfigDict(frozen=True)

    task_id: uuid.UUID
    organization_id: uuid.UUID
    attempt_number: int
    sent_by: str


def broker_url(settings: Settings) -> str:
    if settings.broker_url is None:
        raise ConfigError("SAASSY_EXECUTOR=celery needs SAASSY_BROKER_URL")
    return settings.broker_url.get_secret_value()


def is_redis(settings: Settings) -> bool:
    return urlsplit(broker_url(settings)).scheme.lower() in ("redis", "rediss")


def hard_time_limit_s(settings: Settings) -> int:
    """The longest an attempt may hold its message: the longest task type timeout, a lease
    (a supervisor's last renewal), and the margin to store what it left."""
    timeouts = [task_type.max_timeout_s for task_type in settings.catalog.task_types.values()]
    return max(timeouts, default=0) + int(settings.task_lease_s) + HARD_LIMIT_MARGIN_S


def visibility_timeout_s(settings: Settings) -> int:
    if settings.broker_visibility_timeout_s is not None:
        return settings.broker_visibility_timeout_s
    if is_redis(settings):
        return 2 * hard_time_limit_s(settings)  # Saassy sets it on every client
    return RABBITMQ_CONSUMER_TIMEOUT_S


def check_visibility_timeout(settings: Settings) -> None:
    """A broker that hands out a message again while its attempt may still run would only
    cost a fenced duplicate, but one that does so routinely means a misconfiguration."""
    limit = hard_time_limit_s(settings)
    visible = visibility_timeout_s(settings)
    if visible > limit:
        return
    longest = max(settings.catalog.task_types.items(), key=lambda item: item[1].max_timeout_s)
    needed = limit + 1
    if is_redis(settings):
        remedy = f"set SAASSY_BROKER_VISIBILITY_TIMEOUT_S={needed} (or unset it)"
        where = "Redis's visibility timeout"
    else:
        remedy = (
            f"set consumer_timeout = {needed * 1000} (milliseconds) in rabbitmq.conf, then "
            f"SAASSY_BROKER_VISIBILITY_TIMEOUT_S={needed}"
        )
        where = "RabbitMQ's consumer_timeout (declared in SAASSY_BROKER_VISIBILITY_TIMEOUT_S)"
    raise ConfigError(
        f"{where} is {visible} s, not longer than the hard time limit of {limit} s (task type "
        f"{longest[0]!r}'s max_timeout_s {longest[1].max_timeout_s} s + the "
        f"{int(settings.task_lease_s)} s lease + {HARD_LIMIT_MARGIN_S} s): {remedy}, or lower "
        f"that task type's max_timeout_s"
    )


def check_scale_out(settings: Settings) -> None:
    """What `saassy worker` and `saassy scheduler` need, each refusal in one line."""
    if settings.executor is not ExecutorKind.celery:
        raise ConfigError("this command needs SAASSY_EXECUTOR=celery and SAASSY_BROKER_URL")
    if not settings.resolved_database_url.startswith("postgres"):
        raise ConfigError(
            "several processes share the database: set SAASSY_DATABASE_URL to PostgreSQL "
            "(SQLite serves only `saassy dev` and a single `saassy api`)"
        )
    check_visibility_timeout(settings)
    check_broker_reachable(settings)


def check_broker_reachable(settings: Settings) -> None:
    scheme = urlsplit(broker_url(settings)).scheme
    try:
        with Connection(broker_url(settings), connect_timeout=CONNECT_TIMEOUT_S) as connection:
            connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # kombu raises the transport's own errors
        # The URL may carry a password: name only its scheme and the error's kind.
        raise ConfigError(
            f"SAASSY_BROKER_URL: the {scheme} broker is unreachable ({type(exc).__name__})"
        ) from None


def celery_app(settings: Settings) -> Any:
    """The Celery app of a scheduler (sends) or a worker (runs `RUN_ATTEMPT`)."""
    app = Celery("saassy", broker=broker_url(settings), set_as_current=False)
    transport: dict[str, Any] = {}
    if is_redis(settings):
        transport["visibility_timeout"] = visibility_timeout_s(settings)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.broker_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport,
        # A broker that restarts or fails over is waited for, however long, with Celery's
        # growing pauses: a worker that gave up would leave its host idle until restarted by
        # hand. At start the reachability check has already refused a broker that is not there.
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


class BrokerProbe:
    """One connection of its own to the broker, kept between looks, to notice a broker that
    went away and came back, however briefly: an AMQP connection dies with the server; a Redis
    client reconnects quietly, so the server's run id tells a restarted Redis instead."""

    def __init__(self, app: Any, queue: str) -> None:
        self.app = app
        self.queue = queue
        self._connection: Any = None
        self._server: str | None = None  # the run id of the Redis server last seen
        self._out_since: float | None = None
        self._said_out = False

    def connection_was_lost(self) -> bool | None:
        """None while the broker is out of reach; True when it answers again after the
        connection was lost (it restarted, or was away); False while nothing happened."""
        if self._connection is not None:
            with contextlib.suppress(Exception):  # kombu raises the transport's own errors
                if self._look():
                    return False
            self.close()
            self._out_since = self._out_since or time.monotonic()
        try:
            self._connection = self.app.connection_for_write()
            self._connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT_S)
            self._look()
        except Exception as exc:
            self.close()
            self._out_since = self._out_since or time.monotonic()
            if not self._said_out:
                self._said_out = True
                log.warning("broker.unreachable", error_type=type(exc).__name__)
            return None
        if self._out_since is None:
            return False  # the first look
        log.info("broker.back", after_s=round(time.monotonic() - self._out_since, 1))
        self._out_since, self._said_out = None, False
        return True

    def _look(self) -> bool:
        """Ask the broker something; False when it is another server than last time."""
        channel = self._connection.default_channel
        # "No such queue (yet)" is an answer too: the broker is there.
        with contextlib.suppress(*self._connection.channel_errors):
            channel.queue_declare(queue=self.queue, passive=True)
        client = getattr(channel, "client", None)  # Redis: a redis-py client
        if client is None or not hasattr(client, "info"):
            return True
        server = str(client.info("server").get("run_id"))
        same = self._server in (None, server)
        self._server = server
        return same

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.release()
