#!/bin/sh
# What an offline `docker build -f deploy/Dockerfile` needs, made side by side: the bookworm
# base with python3 (debootstrap) and ./wheelhouse. Both are idempotent; the first run takes
# ~2.5 min (the base), a second a few seconds. docs/deploy.md shows the build that follows.
set -eu
HERE="$(dirname "$0")"
BASE="${1:-saassy/bookworm-python:local}"
"$HERE/build-wheelhouse.sh" &
WHEELHOUSE=$!
BASE_STATUS=0
"$HERE/build-python-base.sh" "$BASE" || BASE_STATUS=$?
WHEELHOUSE_STATUS=0
wait "$WHEELHOUSE" || WHEELHOUSE_STATUS=$?
if [ "$BASE_STATUS" -ne 0 ] || [ "$WHEELHOUSE_STATUS" -ne 0 ]; then
    echo "prepare-image-build.sh: base image exit $BASE_STATUS, wheelhouse exit $WHEELHOUSE_STATUS" >&2
    exit 1
fi
