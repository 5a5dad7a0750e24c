"""The `python` task type: run customer code; its result is what it writes to result.json.

Input: {"code": str, "args": [str, ...]}. The code runs as `__main__` from a file named
`main.py`, with `sys.argv[1:] = args` and the output dir as its working directory, so
`open("result.json", "w")` is the result and any other file written there becomes an artifact.
`$SAASSY_OUTPUT` and `$SAASSY_EVENTS` stay set.

Failures read as if the customer had run `python main.py`: a traceback that starts at
`main.py` (none of this runner's frames) and exit 1; `sys.exit(n)` exits n; `sys.exit("msg")`
prints msg and exits 1; an interrupt exits 130. Standard library only: it runs with the host's
/usr/bin/python3 inside the sandbox.
"""

import json
import linecache
import os
import sys
import traceback
from types import TracebackType

MAIN = "main.py"
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def main() -> None:
    with open(os.environ["SAASSY_INPUT"], encoding="utf-8") as source:
        payload = json.load(source)
    code = payload["code"]
    args = payload.get("args", [])
    if not all(isinstance(arg, str) for arg in args):
        sys.exit("args must be strings: they become sys.argv, and argv is strings")
    # Tracebacks show the customer's lines from here, not from a file that happens to be on disk.
    linecache.cache[MAIN] = (len(code), None, code.splitlines(keepends=True), MAIN)
    try:
        program = compile(code, MAIN, "exec")
    except (SyntaxError, ValueError) as exc:
        traceback.print_exception(exc.with_traceback(None))
        sys.exit(1)
    sys.argv = [MAIN, *args]
    os.chdir(os.environ["SAASSY_OUTPUT"])
    # The customer's code gets a fresh module namespace, like `python main.py` would.
    namespace = {"__name__": "__main__", "__file__": MAIN, "__builtins__": __builtins__}
    try:
        exec(program, namespace)  # noqa: S102
    except SystemExit:
        raise
    except BaseException as exc:  # reported the way the interpreter would
        traceback.print_exception(exc.with_traceback(_from_customer_code(exc.__traceback__)))
        sys.exit(INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1)


def _from_customer_code(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without the runner's frames: it starts at the first frame of main.py."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != MAIN:
        start = start.tb_next
    return start if start is not None else tb


if __name__ == "__main__":
    main()
