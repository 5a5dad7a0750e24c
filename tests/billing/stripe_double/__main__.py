"""`python -m tests.billing.stripe_double --port P --localstripe http://127.0.0.1:Q`"""

from __future__ import annotations

import argparse

import uvicorn

from tests.billing.stripe_double.app import create_app

parser = argparse.ArgumentParser(prog="stripe_double")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--localstripe", required=True, help="localstripe's base URL")
args = parser.parse_args()
uvicorn.run(create_app(args.localstripe), host="127.0.0.1", port=args.port, log_level="warning")
