"""`saassy vault`: the sealed tenant data, straight in the database (no server needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from saassy.cli.common import ConfigOption, DataDirOption, console

if TYPE_CHECKING:
    from saassy.vault.rotation import Rotation

app = typer.Typer(help="Manage the vault of tenant secrets.", no_args_is_help=True)
# saassy.vault.rotation.BATCH_SIZE, without importing it (and SQLAlchemy) for --help; a test
# keeps the two equal.
BATCH_SIZE = 200


@app.command()
def rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Items re-sealed per transaction.")
    ] = BATCH_SIZE,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Re-seal every vault item with the newest key of SAASSY_VAULT_KEYS; safe to repeat."""
    import asyncio

    from saassy.cli.settings import reporting_errors, settings_from
    from saassy.kit.db import create_engine, create_sessionmaker
    from saassy.vault.rotation import reseal_vault

    settings = settings_from(config=config, data_dir=data_dir)

    async def run() -> Rotation:
        engine = create_engine(settings.resolved_database_url)
        try:
            return await reseal_vault(
                create_sessionmaker(engine),
                settings.vault_keyring,
                batch_size=batch_size,
            )
        finally:
            await engine.dispose()

    with reporting_errors():
        done = asyncio.run(run())
    if done.examined == 0:
        console.print("the vault is empty: nothing to re-seal")
    elif done.resealed == 0:
        console.print(f"all {done.examined} vault items were sealed with the newest key already")
    else:
        console.print(
            f"re-sealed {done.resealed} of {done.examined} vault items with the newest key"
        )
