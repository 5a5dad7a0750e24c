"""A served process freezes its start-up heap: full collections no longer walk it."""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

import saassy.app
import saassy.server
from saassy.kit.heap import freeze_start_up


@contextlib.contextmanager
def heap_unfrozen() -> Iterator[None]:
    """Nothing frozen meanwhile; then whatever was frozen goes back to the collector (the
    suite builds apps by the hundred), and the suite's own frozen heap, frozen when every test
    was collected (tests/conftest.py), is frozen again."""
    frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if frozen:
            freeze_start_up()


@pytest.fixture
def unfrozen() -> Iterator[None]:
    with heap_unfrozen():
        yield


def frozen_when_served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []

    def run(app: Any, **options: Any) -> None:
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr(saassy.server.uvicorn, "run", run)
    return seen


@pytest.mark.usefixtures("unfrozen")
def test_an_app_served_here_has_its_start_up_frozen_first(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = frozen_when_served(monkeypatch)
    saassy.server.serve(FastAPI(), host="127.0.0.1", port=0)
    # This process's modules, pytest's and the app's objects: far more than a handful.
    assert len(seen) == 1
    assert seen[0] > 10_000


@pytest.mark.usefixtures("unfrozen")
def test_a_factory_for_workers_freezes_in_each_worker_not_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = frozen_when_served(monkeypatch)
    saassy.server.serve("saassy.app:create_served_app", host="127.0.0.1", port=0, workers=2)
    assert seen == [0]

    built = FastAPI()
    monkeypatch.setattr(saassy.app, "create_app", lambda: built)
    assert saassy.app.create_served_app() is built
    assert gc.get_freeze_count() > 10_000


@pytest.mark.usefixtures("unfrozen")
def test_garbage_left_by_start_up_is_collected_not_frozen() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    left = weakref.ref(Node())
    gc.disable()  # no collection but the one under test
    try:
        assert left() is not None
        freeze_start_up()
    finally:
        gc.enable()
    assert left() is None


def test_the_suites_frozen_heap_stays_frozen_after_these_tests() -> None:
    """tests/conftest.py freezes the collected suite (its full collections cost half as much):
    a test here must not leave it to the collector for every test after it."""
    gc.freeze()  # as pytest_collection_finish did (already, in a whole run)
    with heap_unfrozen():
        assert gc.get_freeze_count() == 0
    assert gc.get_freeze_count() > 10_000
