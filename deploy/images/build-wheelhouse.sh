#!/bin/sh
# Download into ./wheelhouse (or DIR) the wheels deploy/Dockerfile installs without PyPI: the
# runtime dependencies at the versions of requirements.lock, and hatchling to build the package.
# They are for the image's interpreter (CPython 3.11, glibc 2.36, this machine's architecture),
# whatever Python runs this script. Idempotent: does nothing when DIR holds the wheels of this
# lock file already. Run from anywhere; needs python3 with venv and PyPI (or PIP_INDEX_URL).
set -eu
cd "$(dirname "$0")/../.."
DIR="${1:-wheelhouse}"
STAMP="$DIR/.complete"
SUM="$(cat requirements.lock pyproject.toml "deploy/images/build-wheelhouse.sh" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" = "$SUM" ]; then
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
ARCH="$(uname -m)"
# Every manylinux tag bookworm's glibc accepts; no source builds: the image has no compiler.
"$WORK/venv/bin/pip" download --quiet --disable-pip-version-check --dest "$WORK/wheels" \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 \
    --abi none --platform "manylinux_2_36_$ARCH" --platform "manylinux_2_28_$ARCH" \
    --platform "manylinux_2_17_$ARCH" --platform "manylinux2014_$ARCH" \
    --platform "manylinux_2_5_$ARCH" --platform "manylinux1_$ARCH" \
    --constraint requirements.lock . hatchling
mkdir -p "$DIR"
rm -f "$DIR"/*.whl "$STAMP"
mv "$WORK"/wheels/*.whl "$DIR"/
echo "$SUM" >"$STAMP"
echo "$(ls "$DIR"/*.whl | wc -l) wheels in $DIR"
