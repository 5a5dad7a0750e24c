"""The start-up heap out of the garbage collector's reach, once a process is ready to serve.

A started server holds ~300,000 objects that live as long as it does (modules, the app, its
routes and models, SQLAlchemy's mappers). Each full collection walked all of them, stopping the
event loop for 70-270 ms on a 2-core VM: under load that pause was the submit API's p99
(docs/benchmarks.md). Frozen, they are never walked again; what is made later still is.
"""

from __future__ import annotations

import gc


def freeze_start_up() -> None:
    """Collect what start-up left as garbage, then freeze the rest (permanently: call it once,
    where a server, scheduler or worker process is about to serve, never in a library or test
    that builds apps over and over)."""
    gc.collect()
    gc.freeze()
