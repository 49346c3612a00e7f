"""The lock-down of a sandboxed child, before it runs untrusted code: rlimits, a user and network namespace,
process flags, Landlock and a seccomp filter (docs/sandbox.md), and what the parent can promise from the
layers that took (`missing_isolation`).

Standard library only: the child interpreter (`sandbox_child.py`, started with -I -S) has no project and
no site-packages on its path and loads this file by its path; the parent imports it as a module.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

# ---------------------------------------------------------- lock-down constants; what the parent reads

# Landlock ABI v6 added scoping, v4 TCP rules, v3 truncate, v2 cross-directory links.
_LANDLOCK_MIN_ABI_FOR_NET = 4
_LANDLOCK_MIN_ABI_FOR_SCOPE = 6

# Everything that changes the filesystem; reads and execution stay allowed (the stdlib).
_LANDLOCK_FS_WRITE_V1 = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))
_LANDLOCK_FS_REFER = 1 << 13
_LANDLOCK_FS_TRUNCATE = 1 << 14
_LANDLOCK_FS_WRITE_FILE = 1 << 1
_LANDLOCK_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect
_LANDLOCK_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets, signals
_SYS_LANDLOCK_CREATE, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT = 444, 445, 446

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 1, 4, 38, 22
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_THREAD = 0x10000000, 0x40000000, 0x00010000
_EPERM, _EAGAIN, _ENOSYS = 1, 11, 38

# What the parent can promise, from the layers the child reports: guarantee -> alternatives,
# each a set of layers that together provide it. Landlock guards file contents but not metadata
# (chmod, utime), which only seccomp stops. The user namespace alone already denies access to
# other processes' memory and environment, and its network namespace reaches nothing.
_GUARANTEES = {
    "network": (("seccomp",), ("namespaces",)),
    "filesystem": (("landlock", "seccomp"),),
    "signals": (("seccomp",), ("landlock_scope",)),
    "processes": (("seccomp",),),
    "inspection": (("landlock",), ("namespaces",)),
    "resources": (("rlimits",),),
}


def missing_isolation(layers: dict[str, str]) -> list[str]:
    """The guarantees (network, filesystem, ...) that the active layers did not provide."""
    return [
        guarantee
        for guarantee, alternatives in _GUARANTEES.items()
        if not any(all(layers.get(layer) == "on" for layer in needed) for needed in alternatives)
    ]


def lock_down(limits: dict, parent_pid: int) -> dict[str, str]:
    layers = {"rlimits": _layer(_set_rlimits, limits)}
    layers["namespaces"] = _layer(_unshare_network)
    layers["process_flags"] = _layer(_set_process_flags, parent_pid)
    layers.update(_landlock(os.getcwd()))
    layers["seccomp"] = _layer(_install_seccomp)
    sys.set_int_max_str_digits(0)  # the size caps bound big integers, not this check
    return layers


def _layer(apply, *args) -> str:
    try:
        apply(*args)
        return "on"
    except Exception as exc:  # each layer is optional; its absence is reported, not fatal
        return f"off: {exc}"


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> int:
    if result < 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")
    return result


def _set_rlimits(limits: dict) -> None:
    mib = 1024 * 1024
    # CPU time backs up the parent's wall clock; the soft limit's SIGXCPU comes first.
    cpu_s = int(limits["timeout_s"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    for name, value in (
        ("RLIMIT_AS", limits["memory_mb"] * mib),
        ("RLIMIT_FSIZE", limits["file_mb"] * mib),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def _unshare_network() -> None:
    # A new user namespace makes the network namespace possible without root; the new network
    # namespace has only a loopback device that is down, so nothing can be reached.
    _check(_libc().unshare(_CLONE_NEWUSER | _CLONE_NEWNET), "unshare(user+net)")


def _set_process_flags(parent_pid: int) -> None:
    libc = _libc()
    # Non-dumpable: same-uid processes (a sibling sandbox) cannot read this one's memory or fds.
    _check(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    # The sandbox lives in its own session, so nothing else ends it if the harness is killed.
    _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock(workdir: str) -> dict[str, str]:
    try:
        abi = _apply_landlock(workdir)
    except Exception as exc:
        return {key: f"off: {exc}" for key in ("landlock", "landlock_net", "landlock_scope")}
    return {
        "landlock": "on",
        "landlock_net": "on" if abi >= _LANDLOCK_MIN_ABI_FOR_NET else f"off: ABI {abi}",
        "landlock_scope": "on" if abi >= _LANDLOCK_MIN_ABI_FOR_SCOPE else f"off: ABI {abi}",
    }


def _apply_landlock(workdir: str) -> int:
    libc = _libc()
    abi = _check(libc.syscall(_SYS_LANDLOCK_CREATE, None, 0, 1), "landlock ABI query")
    fs = _LANDLOCK_FS_WRITE_V1
    fs |= _LANDLOCK_FS_REFER if abi >= 2 else 0
    fs |= _LANDLOCK_FS_TRUNCATE if abi >= 3 else 0
    net = _LANDLOCK_NET_TCP if abi >= _LANDLOCK_MIN_ABI_FOR_NET else 0
    scoped = _LANDLOCK_SCOPE_ALL if abi >= _LANDLOCK_MIN_ABI_FOR_SCOPE else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = 8 if not net else 16 if not scoped else 24  # older kernels reject unknown fields
    ruleset = _check(libc.syscall(_SYS_LANDLOCK_CREATE, ctypes.byref(attr), size, 0), "ruleset")
    # The working directory is writable; /dev/null too, because code opens it to discard output.
    file_only = _LANDLOCK_FS_WRITE_FILE | (fs & _LANDLOCK_FS_TRUNCATE)
    for path, allowed in ((workdir, fs), (os.devnull, file_only)):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = _PathBeneath(allowed, fd)
            _check(libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0), path)
        finally:
            os.close(fd)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(libc.syscall(_SYS_LANDLOCK_RESTRICT, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)
    return abi


# Per architecture: audit arch, then syscall numbers by purpose. Syscalls from 424 on share one
# number on every architecture.
_SYSCALLS = {
    "x86_64": {
        "audit_arch": 0xC000003E,
        "clone": 56,
        "fcntl": 72,
        "process": (57, 58),  # fork, vfork
        "signal_to_pid": (62, 234, 129, 297),  # kill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo
        "denied": (
            41,  # socket
            200,  # tkill
            101,
            310,
            311,  # ptrace, process_vm_readv/writev
            90,
            91,
            268,  # chmod, fchmod, fchmodat
            92,
            93,
            94,
            260,  # chown, fchown, lchown, fchownat
            188,
            189,
            190,
            197,
            198,
            199,  # set/remove xattr
            132,
            235,
            261,
            280,  # utime, utimes, futimesat, utimensat
        ),
    },
    "aarch64": {
        "audit_arch": 0xC00000B7,
        "clone": 220,
        "fcntl": 25,
        "process": (),  # no fork/vfork syscalls: libc uses clone
        "signal_to_pid": (129, 131, 138, 240),
        # The x86_64 list in the same order, minus calls arm64 does not have
        # (chmod, chown, lchown, utime, utimes, futimesat).
        "denied": (198, 130, 117, 270, 271, 52, 53, 55, 54, 5, 6, 7, 14, 15, 16, 88),
    },
}
# pidfd_send_signal, pidfd_open, pidfd_getfd, io_uring (bypasses seccomp), fchmodat2,
# setxattrat, removexattrat.
_DENIED_EVERYWHERE = (424, 434, 438, 425, 426, 427, 452, 463, 466)
_CLONE3 = 435
# F_SETOWN, F_SETSIG, F_SETOWN_EX: I/O-readiness signals (any signal number) to another process.
_FCNTL_SIGNAL_COMMANDS = (8, 10, 15)
_X32_SYSCALL_BIT = 0x40000000


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program(table: dict, own_pid: int) -> list[tuple[int, int, int, int]]:
    load, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, errno = 0x7FFF0000, 0x00050000
    nr_offset, arch_offset, arg0_offset, arg1_offset = 0, 4, 16, 24

    def deny(nr: int, err: int = _EPERM) -> list:
        return [(jeq, 0, 1, nr), (ret, 0, 0, errno | err)]

    def only_if_arg0_in(nr: int, allowed: tuple[int, ...]) -> list:
        tests = [(jeq, len(allowed) - i, 0, value) for i, value in enumerate(allowed)]
        body = [(load, 0, 0, arg0_offset), *tests, (ret, 0, 0, errno | _EPERM), (ret, 0, 0, allow)]
        return [(jeq, 0, len(body), nr), *body]

    def deny_if_arg1_in(nr: int, denied: tuple[int, ...]) -> list:
        tests = [(jeq, len(denied) - i, 0, value) for i, value in enumerate(denied)]
        body = [(load, 0, 0, arg1_offset), *tests, (ret, 0, 0, allow), (ret, 0, 0, errno | _EPERM)]
        return [(jeq, 0, len(body), nr), *body]

    program = [
        (load, 0, 0, arch_offset),
        (jeq, 1, 0, table["audit_arch"]),
        (ret, 0, 0, errno | _EPERM),  # a foreign syscall ABI (int 0x80) would dodge the numbers
        (load, 0, 0, nr_offset),
        (jge, 0, 1, _X32_SYSCALL_BIT),
        (ret, 0, 0, errno | _EPERM),
    ]
    for nr in table["process"]:
        program += deny(nr, _EAGAIN)
    program += deny(_CLONE3, _ENOSYS)  # ENOSYS makes libc fall back to clone(), checked below
    # clone() is allowed for threads only: no new processes, so nothing can outlive the sandbox.
    program += [
        (jeq, 0, 4, table["clone"]),
        (load, 0, 0, arg0_offset),
        (jset, 0, 1, _CLONE_THREAD),
        (ret, 0, 0, allow),
        (ret, 0, 0, errno | _EAGAIN),
    ]
    # Signals may go to this process (or its group) only; pid arguments compare as 32-bit.
    own_targets = (own_pid, 0, (-own_pid) & 0xFFFFFFFF)
    for nr in table["signal_to_pid"]:
        program += only_if_arg0_in(nr, own_targets)
    program += deny_if_arg1_in(table["fcntl"], _FCNTL_SIGNAL_COMMANDS)
    for nr in (*table["denied"], *_DENIED_EVERYWHERE):
        program += deny(nr)
    return program + [(ret, 0, 0, allow)]


def _install_seccomp() -> None:
    machine = os.uname().machine
    if machine not in _SYSCALLS:
        raise OSError(f"no syscall table for {machine}")
    program = _seccomp_program(_SYSCALLS[machine], os.getpid())
    filters = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), filters)
    libc = _libc()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
