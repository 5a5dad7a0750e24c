"""The `python` task type: run customer code; its result is what it writes to result.json.

Input: {"code": str, "args": [...]}. The code runs as `__main__` with `sys.argv[1:] = args` and
the output dir as its working directory, so `open("result.json", "w")` is the result and any
other file written there becomes an artifact. `$SAASSY_OUTPUT` and `$SAASSY_EVENTS` stay set.
An uncaught exception prints its traceback on stderr and exits 1 (a failed attempt).
Standard library only: it runs with the host's /usr/bin/python3 inside the sandbox.
"""

import json
import os
import sys


def main() -> None:
    with open(os.environ["SAASSY_INPUT"], encoding="utf-8") as source:
        payload = json.load(source)
    program = compile(payload["code"], "main.py", "exec")
    sys.argv = ["main.py", *(str(arg) for arg in payload.get("args", []))]
    os.chdir(os.environ["SAASSY_OUTPUT"])
    # The customer's code gets a fresh module namespace, like `python main.py` would.
    exec(program, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})  # noqa: S102


if __name__ == "__main__":
    main()
