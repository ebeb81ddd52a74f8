"""Failures after init's last sync message are told, not lost; an exec child drops what it no longer needs.

Once init has closed its sync socket (it waits on the exec fifo, then execve), an error cannot go
to the parent any more: an execve refused by the profile goes to the container's stderr (runc's
``exec /bin/echo: permission denied``), and an init killed during its last set-up steps is named
as such, with the signal (SIGSYS: seccomp), when it is started.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading

import pyseccomp
import pytest

from conftest import read_log, unique_id, wait_for
from declarative_ct.configs import Config
from declarative_ct.configs.seccomp import Seccomp, SeccompSyscall
from declarative_ct.errors import ContainerError, InvalidStateTransition
from declarative_ct.runtime import Process

pytestmark = pytest.mark.integration


_OPENAT = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "openat")


def _syscall_of(pid: int) -> int | None:
    """The number of the syscall ``pid`` is blocked in (``/proc/<pid>/syscall``), None if running."""
    with open(f"/proc/{pid}/syscall") as f:
        first = f.read().split()[0]
    return int(first) if first.lstrip("-").isdigit() and int(first) >= 0 else None


def _deny(names, action="SCMP_ACT_ERRNO", err=errno.EACCES) -> Seccomp:
    return Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(list(names), action, err)])


def test_an_execve_refused_by_the_profile_is_said_on_stderr(run_container, busybox_config):
    res = run_container(busybox_config(seccomp=_deny(["execve"])), ["/bin/echo", "hi"], "noexec")
    assert res.stderr == "dct: exec /bin/echo: permission denied\n"
    assert res.exit_code == 126 and res.stdout == ""


def test_a_fifo_open_refused_by_the_profile_names_that_step(runtime, busybox_config):
    """Regression: every late failure was told as ``exec <program>``, also an open of the exec
    fifo that the profile refused (the program was never reached)."""
    c = runtime.create(unique_id("nofifo"), busybox_config(seccomp=_deny(["openat", "open"], err=errno.EPERM)))
    c.start(Process(["/bin/echo", "hi"]))
    wait_for(c.exit_status, 5, message="init to die")
    assert read_log(c, "stderr") == ("dct: waiting for the start on the exec fifo: operation not permitted "
                                      "(refused by the seccomp profile?)\n")
    with pytest.raises(InvalidStateTransition, match=r"\(exit code 126\)"):
        c.exec()


def test_init_crashed_by_a_deny_all_profile_points_at_it(runtime, busybox_config):
    """Regression: a profile refusing everything crashed init (SIGSEGV) with no word of seccomp."""
    c = runtime.create(unique_id("denyall"), busybox_config(seccomp=Seccomp("SCMP_ACT_ERRNO")))
    with pytest.raises(ContainerError, match="seccomp"):
        c.run(Process(["/bin/true"]))


def test_init_killed_during_set_up_is_named_at_start(runtime, busybox_config):
    # rt_sigaction runs after the sync socket is closed (init's handlers for the fifo wait).
    c = runtime.create(unique_id("sigsys"), busybox_config(seccomp=_deny(["rt_sigaction"], "SCMP_ACT_KILL_PROCESS", None)))
    c.start(Process(["/bin/true"]))
    with pytest.raises(InvalidStateTransition, match=r"init died during set-up, before it was released "
                                                     r"\(killed by signal 31 \(SIGSYS\): killed by seccomp\?\)"):
        wait_for(c.exit_status, 5, message="init to die")
        c.exec()


def test_exec_child_closes_the_cgroup_files_before_its_last_steps(runtime, busybox_rootfs, tmp_path):
    """The exec'd child waits on /etc/passwd (a fifo here, read for HOME): by then its
    ``cgroup.procs`` descriptors must be closed."""
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    passwd = os.path.join(rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.mkfifo(passwd)
    c = runtime.create(unique_id("cgfds"), Config(rootfs=rootfs, hostname="box"))
    c.start(Process(["/bin/sleep", "60"], env=["PATH=/bin", "HOME=/root"]))
    c.exec()
    init_pid = c.state().init_process_pid
    done: list = []
    worker = threading.Thread(target=lambda: done.append(c.start(Process(["/bin/true"], init=False, env=["PATH=/bin"]))))
    worker.start()
    try:
        child = wait_for(lambda: next((p for p in c.processes() if p != init_pid), None), 5,
                         message="the exec child in the cgroup")
        # Blocked in open("/etc/passwd"): past the cgroup join, before execve.
        wait_for(lambda: _syscall_of(child) == _OPENAT, 5, message="the exec child to wait on /etc/passwd")
        held = []
        for fd in os.listdir(f"/proc/{child}/fd"):
            try:
                held.append(os.readlink(f"/proc/{child}/fd/{fd}"))
            except OSError:
                pass
        assert not [p for p in held if p.endswith("cgroup.procs")], held
    finally:
        with open(passwd, "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        worker.join(10)
    assert done and done[0].wait() == 0


def test_an_init_failure_names_its_stage_and_errno(busybox_config, runtime):
    """errors.InitFailed: the step init was at and the errno, beside the same text as before."""
    import errno

    from declarative_ct.configs import Mount
    from declarative_ct.errors import InitFailed
    from declarative_ct.runtime import Process

    cfg = busybox_config()
    cfg.mounts = [*cfg.mounts, Mount("none", "/mnt", "bogusfs")]
    c = runtime.create(unique_id("stage"), cfg)
    with pytest.raises(InitFailed) as info:
        c.run(Process(["true"]))
    assert (info.value.stage, info.value.errno) == ("rootfs", errno.ENODEV)
    assert str(info.value).startswith("container init failed: ") and "unknown filesystem type 'bogusfs'" in str(info.value)
    assert not os.path.exists(c.state_dir)
