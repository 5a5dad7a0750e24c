"""Syscall numbers for the seccomp filter, per architecture, and the audit arch that names each.

Numbers from the kernel's UAPI headers (`asm/unistd_64.h` for x86_64, `asm-generic/unistd.h`
for aarch64); a test checks every one against libseccomp's own table where it is installed.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from types import MappingProxyType

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# Present on both: the new mount API, io_uring and clone3 share numbers everywhere.
_COMMON = {
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "move_mount": 429,
    "open_tree": 428,
    "mount_setattr": 442,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "clone3": 435,
    "quotactl_fd": 443,
}
_X86_64 = {
    "acct": 163,
    "add_key": 248,
    "bpf": 321,
    "clock_adjtime": 305,
    "clock_settime": 227,
    "clone": 56,
    "delete_module": 176,
    "finit_module": 313,
    "init_module": 175,
    "ioperm": 173,
    "iopl": 172,
    "kexec_file_load": 320,
    "kexec_load": 246,
    "keyctl": 250,
    "lookup_dcookie": 212,
    "mount": 165,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "perf_event_open": 298,
    "personality": 135,
    "pivot_root": 155,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "ptrace": 101,
    "quotactl": 179,
    "reboot": 169,
    "request_key": 249,
    "setns": 308,
    "socket": 41,
    "socketpair": 53,
    "settimeofday": 164,
    "swapoff": 168,
    "swapon": 167,
    "syslog": 103,
    "umount2": 166,
    "unshare": 272,
    "uselib": 134,
    "userfaultfd": 323,
}
_AARCH64 = {
    "acct": 89,
    "add_key": 217,
    "bpf": 280,
    "clock_adjtime": 266,
    "clock_settime": 112,
    "clone": 220,
    "delete_module": 106,
    "finit_module": 273,
    "init_module": 105,
    "kexec_file_load": 294,
    "kexec_load": 104,
    "keyctl": 219,
    "lookup_dcookie": 18,
    "mount": 40,
    "name_to_handle_at": 264,
    "open_by_handle_at": 265,
    "perf_event_open": 241,
    "personality": 92,
    "pivot_root": 41,
    "process_vm_readv": 270,
    "process_vm_writev": 271,
    "ptrace": 117,
    "quotactl": 60,
    "reboot": 142,
    "request_key": 218,
    "setns": 268,
    "socket": 198,
    "socketpair": 199,
    "settimeofday": 170,
    "swapoff": 225,
    "swapon": 224,
    "syslog": 116,
    "umount2": 39,
    "unshare": 97,
    "userfaultfd": 282,
}


@dataclass(frozen=True, eq=False)  # one per ABI: compared (and cached) by identity
class Arch:
    """One kernel ABI as seccomp sees it: `seccomp_data.arch` and the syscall numbers."""

    name: str
    audit: int
    numbers: MappingProxyType[str, int]
    x32_bit: bool  # x86_64: the same audit arch also carries x32 calls, marked by this bit

    def number(self, name: str) -> int | None:
        return self.numbers.get(name)


ARCHES = {
    "x86_64": Arch("x86_64", AUDIT_ARCH_X86_64, MappingProxyType(_COMMON | _X86_64), True),
    "aarch64": Arch("aarch64", AUDIT_ARCH_AARCH64, MappingProxyType(_COMMON | _AARCH64), False),
}


def native_arch() -> Arch | None:
    """The ABI of this machine's processes, if the filter knows it."""
    machine = platform.machine()
    return ARCHES.get({"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine))
