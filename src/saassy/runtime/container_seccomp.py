"""The process runtime's seccomp filter (seccomp.py) as the JSON profile dockerd takes, so a
container is refused what a bubblewrap sandbox is: dockerd's default profile lets io_uring,
ptrace, vsock sockets and the 32-bit entry point through.

Allow by default; the same calls fail with the same errors. Only the native ABI is listed, so a
call through another (i386's `int 0x80` on x86_64) gets libseccomp's bad-arch action, which runc
sets to kill. Each rule compares one argument once (libseccomp's limit), so "any of these flags"
is one rule per flag, and `personality` is refused the flags that weaken the address space
(no randomisation, page zero mapped, readable implies executable, the old layout) rather than
allowed a list of values.
"""

from __future__ import annotations

import errno
import functools
import json
from typing import Any

from saassy.runtime.seccomp import AF_VSOCK, DENIED
from saassy.runtime.syscalls import Arch

SCMP_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
CLONE_NEWTIME = 0x80  # unshare only: in clone's flags this byte is the exit signal
# ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT, READ_IMPLIES_EXEC
WEAKENING_PERSONALITY = (0x0040000, 0x0100000, 0x0200000, 0x0400000)


def _errno(names: list[str], code: int, *args: dict[str, Any]) -> dict[str, Any]:
    return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": code, "args": list(args)}


def _masked(index: int, bit: int) -> dict[str, Any]:
    return {"index": index, "value": bit, "valueTwo": bit, "op": "SCMP_CMP_MASKED_EQ"}


@functools.cache
def container_profile(arch: Arch, *, allow_user_namespaces: bool = False) -> str:
    """The profile for `arch`, as the text `--security-opt seccomp=` takes."""
    denied = [name for name in DENIED if arch.number(name) is not None]
    rules = [
        _errno(denied, errno.EPERM),
        _errno(["clone3"], errno.ENOSYS),  # its flags are in memory: libc falls back to clone
        _errno(
            ["socket", "socketpair"],
            errno.EAFNOSUPPORT,
            {"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ"},
        ),
    ]
    weakening = WEAKENING_PERSONALITY
    rules += [_errno(["personality"], errno.EPERM, _masked(0, bit)) for bit in weakening]
    if not allow_user_namespaces:
        rules += [_errno(["clone"], errno.EPERM, _masked(0, bit)) for bit in CLONE_NEW]
        unshare = (*CLONE_NEW, CLONE_NEWTIME)
        rules += [_errno(["unshare"], errno.EPERM, _masked(0, bit)) for bit in unshare]
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [SCMP_ARCHES[arch.name]],
        "syscalls": rules,
    }
    return json.dumps(profile, separators=(",", ":"))
