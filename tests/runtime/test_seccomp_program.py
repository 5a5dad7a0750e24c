"""The seccomp program itself, run by a small classic-BPF interpreter: every ABI, not just ours.

The kernel's verdict on this machine's ABI is tested for real in test_hardening.py; here the
paths no host can show at once (aarch64, x32 on a kernel without it) are checked against what
the program returns, and the syscall numbers against libseccomp's own table.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import struct

import pytest

from saassy.runtime.seccomp import (
    DENIED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    sandbox_filter,
)
from saassy.runtime.syscalls import ARCHES, X32_SYSCALL_BIT, Arch
from tests.services import IN_CI

AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_ARM = 0x40000028
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
EPERM = RET_ERRNO | errno.EPERM
ENOSYS = RET_ERRNO | errno.ENOSYS


def verdict(program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """What the filter returns for one call: the loads, jumps and returns the program uses."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    code = [struct.unpack_from("<HBBI", program, at) for at in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x06:  # ret k
            return k
        elif op in (0x15, 0x35, 0x45):  # jeq, jge, jset
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"unexpected BPF instruction {op:#x}")
        pc += 1


@pytest.mark.parametrize("arch", ARCHES.values(), ids=lambda arch: arch.name)
def test_every_denied_call_fails_with_eperm_and_the_rest_pass(arch: Arch) -> None:
    program = sandbox_filter(arch)
    for name in DENIED:
        if (nr := arch.number(name)) is not None:
            assert verdict(program, arch.audit, nr) == EPERM, name
    read, getpid = (0, 39) if arch.name == "x86_64" else (63, 172)
    assert verdict(program, arch.audit, read) == RET_ALLOW
    assert verdict(program, arch.audit, getpid) == RET_ALLOW


@pytest.mark.parametrize("arch", ARCHES.values(), ids=lambda arch: arch.name)
def test_new_user_namespaces_are_refused_unless_the_task_type_allows_them(arch: Arch) -> None:
    clone, unshare = arch.numbers["clone"], arch.numbers["unshare"]
    strict, browser = sandbox_filter(arch), sandbox_filter(arch, allow_user_namespaces=True)
    assert verdict(strict, arch.audit, unshare, CLONE_NEWUSER) == EPERM
    assert verdict(strict, arch.audit, clone, CLONE_NEWUSER | SIGCHLD) == EPERM
    assert verdict(strict, arch.audit, clone, SIGCHLD) == RET_ALLOW  # fork
    assert verdict(strict, arch.audit, unshare, 0x400) == RET_ALLOW  # CLONE_FILES
    assert verdict(browser, arch.audit, unshare, CLONE_NEWUSER) == RET_ALLOW
    for program in (strict, browser):  # flags the filter cannot read: libc falls back to clone
        assert verdict(program, arch.audit, arch.numbers["clone3"]) == ENOSYS


@pytest.mark.parametrize("arch", ARCHES.values(), ids=lambda arch: arch.name)
def test_personality_keeps_address_randomisation(arch: Arch) -> None:
    program, personality = sandbox_filter(arch), arch.numbers["personality"]
    assert verdict(program, arch.audit, personality, 0x0040000) == EPERM  # ADDR_NO_RANDOMIZE
    assert verdict(program, arch.audit, personality, 0xFFFFFFFF) == RET_ALLOW  # query


@pytest.mark.parametrize("arch", ARCHES.values(), ids=ARCHES.keys())
@pytest.mark.parametrize("call", ["socket", "socketpair"])
def test_vsock_sockets_are_refused_and_others_pass(arch: Arch, call: str) -> None:
    program, number = sandbox_filter(arch), arch.numbers[call]
    assert verdict(program, arch.audit, number, 40) == RET_ERRNO | errno.EAFNOSUPPORT  # AF_VSOCK
    for family in (1, 2, 10, 16):  # unix, inet, inet6, netlink
        assert verdict(program, arch.audit, number, family) == RET_ALLOW


def test_foreign_abis_are_killed_and_x32_is_absent() -> None:
    x86_64, aarch64 = ARCHES["x86_64"], ARCHES["aarch64"]
    program = sandbox_filter(x86_64)
    assert verdict(program, AUDIT_ARCH_I386, 20) == RET_KILL_PROCESS  # int 0x80 getpid
    assert verdict(program, aarch64.audit, 172) == RET_KILL_PROCESS
    assert verdict(program, x86_64.audit, X32_SYSCALL_BIT | 272, CLONE_NEWUSER) == ENOSYS
    assert verdict(sandbox_filter(aarch64), AUDIT_ARCH_ARM, 20) == RET_KILL_PROCESS


def _libseccomp() -> ctypes.CDLL:
    found = ctypes.util.find_library("seccomp")
    if found is None:
        message = "libseccomp is not installed (apt install libseccomp2): numbers not checked"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    library = ctypes.CDLL(found)
    library.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    return library


@pytest.mark.parametrize("arch", ARCHES.values(), ids=lambda arch: arch.name)
def test_syscall_numbers_match_libseccomp(arch: Arch) -> None:
    library = _libseccomp()  # its arch tokens are the audit arch values
    for name, number in arch.numbers.items():
        assert library.seccomp_syscall_resolve_name_arch(arch.audit, name.encode()) == number, name
