"""A process that runs one task whose sandbox fails to start, logging as production does.

Usage: python -m tests.observability.engine_logs DATABASE_URL DATA_DIR CONFIG TASK_ID
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from saassy.config import Settings
from saassy.dispatch.engine import build_task_engine
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.logging import configure_logging
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY
from tests.dispatch.support import wait_for_status


async def main(database_url: str, data_dir: str, config: str, task_id: str) -> None:
    settings = Settings(
        env="production",
        database_url=database_url,
        data_dir=Path(data_dir),
        config=Path(config),
        secret_key=TEST_SECRET,
        vault_keys=TEST_VAULT_KEY,
    )
    configure_logging(json=True)  # as create_app does in production
    runtime = FakeRuntime()
    failing = FakeScript(fail_to_start=RuntimeError("no sandbox today"))
    runtime.script(f"task-{task_id}-attempt-1", failing)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    task_engine = build_task_engine(
        settings, sessionmaker, runtime, lease=timedelta(seconds=3), poll_s=0.05
    )
    await task_engine.start()
    await wait_for_status(sessionmaker, [uuid.UUID(task_id)])
    await task_engine.stop(grace_s=1)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
