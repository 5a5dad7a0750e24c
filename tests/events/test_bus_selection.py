"""Which bus a process uses: Redis with `SAASSY_REDIS_URL`, else memory; said at start and in
`/ready`; Redis settings refused at load when they cannot be used."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from saassy import app as app_module
from saassy.app import create_app
from saassy.config import ConfigError, Settings, load_settings
from saassy.dispatch.engine import build_task_engine
from saassy.events.bus import SubscriptionClosed
from saassy.events.memory import MemoryEventBus
from saassy.events.redis import RedisEventBus
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.runtime.fake import FakeRuntime
from tests.conftest import SignUp, client_for
from tests.events.support import RecordedLog
from tests.services import REDIS_URL, require


def require_redis() -> None:
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)


async def ready_and_bus(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], object, list[str]]:
    """`/ready`'s body, the app's bus, and the bus the app said at start it uses."""
    logged = RecordedLog()
    monkeypatch.setattr(app_module, "log", logged)
    application = create_app(settings, background=False)
    async with application.router.lifespan_context(application):
        async with client_for(application) as client:
            response = await client.get("/ready")
        bus = application.state.ctx.events
    assert response.status_code == 200, response.text
    started = [fields["bus"] for event, fields in logged.entries if event == "events.bus"]
    return response.json(), bus, started


async def test_without_redis_the_bus_is_in_memory(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    body, bus, started = await ready_and_bus(settings_factory(), monkeypatch)
    assert isinstance(bus, MemoryEventBus)
    assert (body["events"], started) == ("memory", ["memory"])


@pytest.mark.redis
async def test_with_redis_the_app_uses_a_redis_bus(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis()
    settings = settings_factory(redis_url=REDIS_URL, redis_prefix=f"test-{uuid.uuid4().hex[:8]}")
    body, bus, started = await ready_and_bus(settings, monkeypatch)
    assert isinstance(bus, RedisEventBus)
    assert (body["events"], started) == ("redis", ["redis"])


@pytest.mark.redis
async def test_an_engine_built_on_its_own_makes_its_bus_from_the_settings(
    settings_factory: Callable[..., Settings],
) -> None:
    """As `saassy worker` or `saassy scheduler` would: no app to share a bus with."""
    require_redis()
    settings = settings_factory(redis_url=REDIS_URL, redis_prefix=f"test-{uuid.uuid4().hex[:8]}")
    engine = create_engine(settings.resolved_database_url)
    task_engine = build_task_engine(settings, create_sessionmaker(engine), FakeRuntime())
    assert isinstance(task_engine.events, RedisEventBus)
    await task_engine.start()
    assert task_engine.events.describe() == "redis"
    subscription = task_engine.events.subscribe(uuid.uuid4())
    await task_engine.stop(grace_s=0.1)
    with pytest.raises(SubscriptionClosed):  # it owned its bus, so it closed it
        await subscription.get(1.0)
    await engine.dispose()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(run_engine=False)


async def test_api_only_without_redis_refuses_live_streams(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    """Nothing would ever arrive: an engine elsewhere cannot reach this process's memory."""
    account = await signup()
    response = await client.get("/api/v1/events", headers=account.headers)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "engine_unavailable"


@pytest.mark.parametrize("prefix", ["", "a*b", "has space", "x" * 65, "a:b"])
def test_a_prefix_that_could_widen_the_subscription_is_refused(
    clean_environment: pytest.MonkeyPatch, prefix: str
) -> None:
    clean_environment.setenv("SAASSY_REDIS_URL", "redis://127.0.0.1:6379/0")
    clean_environment.setenv("SAASSY_REDIS_PREFIX", prefix)
    with pytest.raises(ConfigError, match=r"SAASSY_REDIS_PREFIX: .*is not a Redis prefix"):
        load_settings()


def test_a_prefix_without_redis_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("SAASSY_REDIS_PREFIX", "shop-two")
    with pytest.raises(ConfigError, match="SAASSY_REDIS_PREFIX is set but SAASSY_REDIS_URL"):
        load_settings()


def test_a_url_that_is_not_redis_is_refused_without_showing_it(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("SAASSY_REDIS_URL", "http://user:hunter2@cache:6379/0")
    with pytest.raises(ConfigError, match="SAASSY_REDIS_URL: not a Redis URL") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_the_redis_password_stays_out_of_reprs(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("SAASSY_REDIS_URL", "redis://:hunter2@cache:6379/0")
    clean_environment.setenv("SAASSY_REDIS_PREFIX", "shop-two")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.redis_prefix == "shop-two"
