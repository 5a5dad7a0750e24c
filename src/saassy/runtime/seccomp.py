"""The seccomp filter every sandbox runs under: a classic BPF program bwrap loads (`--seccomp`).

Allow by default; the calls below fail with EPERM (so a program can fall back, as it does under
Docker's default profile), never kill. Made here, in a few dozen instructions, rather than
through libseccomp: a machine with only Python has no libseccomp.so, and what the filter must
do is small enough to read whole (docs/adr/0009-seccomp-filter.md).

- A foreign ABI (i386 through `int 0x80` on x86_64, arm32 on aarch64) kills the process: its
  syscall numbers mean other calls, and nothing in a sandbox needs it. x32 calls (the x86_64
  audit arch with bit 30 set) fail with ENOSYS, as on a kernel built without x32.
- New namespaces: `clone` and `unshare` with any CLONE_NEW* flag fail with EPERM unless the task
  type allows user namespaces (a browser's own sandbox needs them). `clone3` passes its flags in
  memory the filter cannot read, so it fails with ENOSYS and libc falls back to `clone`.
- `personality` only with the values Docker allows (no turning off address randomisation).
- `socket`/`socketpair` of the vsock family fail with EAFNOSUPPORT: network namespaces do not
  confine vsock, and on a virtual machine it reaches the hypervisor's services.
"""

from __future__ import annotations

import errno
import functools
import struct
from dataclasses import dataclass, field

from saassy.runtime.syscalls import X32_SYSCALL_BIT, Arch

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian)
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16
LD_W_ABS, JMP_JEQ_K, JMP_JGE_K, JMP_JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
CLONE_NEW_FLAGS = 0x7E020000  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NEWTIME = 0x80  # unshare only: in clone's flags this byte is the exit signal
AF_VSOCK = 40
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # Linux, Linux32, UNAME26, query

DENIED = (
    # Other processes, the kernel and its keyrings, the clock, the machine.
    "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key", "syslog", "acct", "reboot", "settimeofday",
    "clock_settime", "clock_adjtime", "swapon", "swapoff", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "ioperm", "iopl", "uselib", "lookup_dcookie",
    "quotactl", "quotactl_fd",
    # io_uring runs work outside the syscall path this filter sees.
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # Mounts and namespaces, old API and new.
    "mount", "umount2", "pivot_root", "setns", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    # File handles reach files outside the sandbox's view of the tree.
    "name_to_handle_at", "open_by_handle_at",
)  # fmt: skip


@dataclass
class _Program:
    """Instructions with forward jumps to named labels, resolved by `assemble`."""

    code: list[tuple[int, str | int, str | int, int]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)

    def add(self, op: int, k: int, true: str | int = 0, false: str | int = 0) -> None:
        self.code.append((op, true, false, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for at, (op, true, false, k) in enumerate(self.code):
            jt, jf = (self._offset(at, target) for target in (true, false))
            out += struct.pack("<HBBI", op, jt, jf, k)
        return bytes(out)

    def _offset(self, at: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - at - 1
        if not 0 <= offset <= 255:
            raise ValueError(f"jump to {target} out of range ({offset})")
        return offset


@functools.cache
def sandbox_filter(arch: Arch, *, allow_user_namespaces: bool = False) -> bytes:
    """The filter for `arch` as packed `struct sock_filter`s, ready for bwrap's `--seccomp`."""
    p = _Program()
    p.add(LD_W_ABS, OFFSET_ARCH)
    p.add(JMP_JEQ_K, arch.audit, false="kill")
    p.add(LD_W_ABS, OFFSET_NR)
    if arch.x32_bit:
        p.add(JMP_JGE_K, X32_SYSCALL_BIT, true="enosys")
    for name in DENIED:
        if (number := arch.number(name)) is not None:
            p.add(JMP_JEQ_K, number, true="eperm")
    p.add(JMP_JEQ_K, _number(arch, "clone3"), true="enosys")
    p.add(JMP_JEQ_K, _number(arch, "personality"), true="personality")
    p.add(JMP_JEQ_K, _number(arch, "socket"), true="socket")
    p.add(JMP_JEQ_K, _number(arch, "socketpair"), true="socket")
    if not allow_user_namespaces:
        p.add(JMP_JEQ_K, _number(arch, "clone"), true="clone")
        p.add(JMP_JEQ_K, _number(arch, "unshare"), true="unshare")
    p.add(RET_K, RET_ALLOW)
    p.label("personality")
    p.add(LD_W_ABS, OFFSET_ARG0_LOW)
    for value in PERSONALITIES:
        p.add(JMP_JEQ_K, value, true="allow")
    p.add(RET_K, RET_ERRNO | errno.EPERM)
    p.label("socket")
    p.add(LD_W_ABS, OFFSET_ARG0_LOW)
    p.add(JMP_JEQ_K, AF_VSOCK, true="eafnosupport", false="allow")
    if not allow_user_namespaces:
        p.label("clone")
        p.add(LD_W_ABS, OFFSET_ARG0_LOW)
        p.add(JMP_JSET_K, CLONE_NEW_FLAGS, true="eperm", false="allow")
        p.label("unshare")
        p.add(LD_W_ABS, OFFSET_ARG0_LOW)
        p.add(JMP_JSET_K, CLONE_NEW_FLAGS | CLONE_NEWTIME, true="eperm", false="allow")
    p.label("allow")
    p.add(RET_K, RET_ALLOW)
    p.label("eperm")
    p.add(RET_K, RET_ERRNO | errno.EPERM)
    p.label("eafnosupport")
    p.add(RET_K, RET_ERRNO | errno.EAFNOSUPPORT)
    p.label("enosys")
    p.add(RET_K, RET_ERRNO | errno.ENOSYS)
    p.label("kill")
    p.add(RET_K, RET_KILL_PROCESS)
    return p.assemble()


def _number(arch: Arch, name: str) -> int:
    number = arch.number(name)
    if number is None:
        raise KeyError(f"{name} has no number on {arch.name}")
    return number
