#!/bin/sh
# Build saassy/bookworm-python:local, a Debian bookworm image with python3 (3.11) and its venv
# module, from Debian's packages with debootstrap: a BASE for deploy/Dockerfile where no image
# registry is reachable. Needs root, debootstrap and dockerd; ~2.5 min, mostly downloads.
# Idempotent: does nothing when the image exists and was made by this version of the script.
set -eu
IMAGE="${1:-saassy/bookworm-python:local}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SCRIPT_SUM="$(sha256sum "$0" | cut -c1-16)"
LABEL=dev.saassy.base-script
if [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null)" = "$SCRIPT_SUM" ]; then
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "build-python-base.sh: no debootstrap: apt-get install debootstrap" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "build-python-base.sh: debootstrap needs root: run it with sudo" >&2
    exit 1
fi
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
# minbase: dpkg, apt and what they need; Python's venv brings ensurepip's wheels along.
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOT" "$MIRROR"
# The image's own apt (the Dockerfile installs bubblewrap, tini...) sees the security updates too.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log
tar -C "$ROOT" -c . | docker import --change "LABEL $LABEL=$SCRIPT_SUM" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "built $IMAGE"
