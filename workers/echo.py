"""The `echo` task type: its result is its input (a smoke test of the worker contract).

Standard library only: it runs with the host's /usr/bin/python3 inside the sandbox.
"""

import json
import os
import sys


def main() -> int:
    with open(os.environ["SAASSY_INPUT"], encoding="utf-8") as source:
        payload = json.load(source)
    result = os.path.join(os.environ["SAASSY_OUTPUT"], "result.json")
    with open(result, "w", encoding="utf-8") as target:
        json.dump(payload, target)
    print("echoed", len(json.dumps(payload)), "bytes of input")
    return 0


if __name__ == "__main__":
    sys.exit(main())
