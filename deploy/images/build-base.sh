#!/bin/sh
# Build saassy/base:test, a ~1 MB image of a static busybox, from this host's files: no
# registry is needed. Idempotent: does nothing when the image exists. Needs busybox-static.
set -eu
IMAGE="${1:-saassy/base:test}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    exit 0
fi
BUSYBOX="$(command -v busybox || true)"
# A static binary runs in an image without libraries: ldd fails on it ("not a dynamic executable").
if [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "build-base.sh: no static busybox: apt-get install busybox-static" >&2
    exit 1
fi
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/etc" "$ROOT/saassy"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$ROOT/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ROOT/bin/$applet"
done
printf 'root:x:0:0:root:/tmp:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
tar -C "$ROOT" -c . | docker import --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
echo "built $IMAGE"
