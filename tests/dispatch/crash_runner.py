"""A process running only the task engine on a database, to be killed with SIGKILL by a test.

Usage: python -m tests.dispatch.crash_runner DATABASE_URL DATA_DIR CONFIG [LEASE_S [SANDBOX_DIR]]
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from saassy.config import Settings
from saassy.dispatch.engine import build_task_engine
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.runtime.process import ProcessRuntime

TEST_SECRET = secrets.token_urlsafe(48)
TEST_VAULT_KEY = "Y3Jhc2gtcnVubmVyLXZhdWx0LWtleS0wMTIzNDU2Nzg="


async def main(
    database_url: str, data_dir: str, config: str, lease_s: str = "2", sandbox_dir: str = ""
) -> None:
    settings = Settings(
        env="test",
        database_url=database_url,
        data_dir=Path(data_dir),
        config=Path(config),
        secret_key=TEST_SECRET,
        vault_keys=TEST_VAULT_KEY,
    )
    engine = create_engine(database_url)
    task_engine = build_task_engine(
        settings,
        create_sessionmaker(engine),
        ProcessRuntime(work_dir=Path(sandbox_dir) if sandbox_dir else None),
        parallelism=150,
        lease=timedelta(seconds=float(lease_s)),
        poll_s=0.1,
        adopt_every_s=0.5,
    )
    await task_engine.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
