"""CVE-2019-5736 class: a container must never reach a host file backing a runtime process.

Runtime processes are visible inside a container before they exec the program: a container's
init (forked by the monitor, or by stage 1 without it) until the exec fifo releases it, and the
child of ``exec`` until its ``execve``. A container process holding CAP_SYS_PTRACE is not stopped
by "not dumpable": it can open their ``/proc/<pid>/exe`` (O_PATH) and, once the runtime process
is gone, reopen it for writing through ``/proc/self/fd/N`` — the host's interpreter, were it run
from there. The attacker here is a static C program built by the test; it reports every file it
reached through ``/proc/<pid>/{exe,map_files/*,fd/*,root,cwd}``, and what reopening it O_RDWR gave.

Files are identified by (dev, ino) and by memfd-ness (no link, seals), never by ETXTBSY: pytest
runs the same interpreter, which would refuse a writer while it runs and so hide the bug here.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
import threading
import time

import pytest

from conftest import rootfs_with_static_program, unique_id, wait_for
from declarative_ct.configs import DEFAULT_CAPABILITIES, Capabilities, Config, Namespace
from declarative_ct.runtime import Process, Status, exeseal

pytestmark = pytest.mark.integration

ATTACKER_C = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#define MAX 4096

/* Every file reached (O_PATH fds kept), and the processes looked at. */
static struct { int fd; char kind[16]; int pid; dev_t dev; ino_t ino; } got[MAX];
static int ngot;
static struct { int pid; int looks; } seen[MAX];
static int nseen;

static int known(dev_t dev, ino_t ino, const char *kind) {
    for (int i = 0; i < ngot; i++)
        if (got[i].dev == dev && got[i].ino == ino && !strcmp(got[i].kind, kind)) return 1;
    return 0;
}

static void keep(const char *path, const char *kind, int pid, int flags) {
    if (ngot >= MAX) return;
    int fd = open(path, O_PATH | flags);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) < 0 || known(st.st_dev, st.st_ino, kind)) { close(fd); return; }
    got[ngot].fd = fd; got[ngot].pid = pid; got[ngot].dev = st.st_dev; got[ngot].ino = st.st_ino;
    snprintf(got[ngot].kind, sizeof got[ngot].kind, "%s", kind);
    ngot++;
}

static void scan_dir(int pid, const char *sub, const char *kind) {
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, sub);
    DIR *d = opendir(path);
    if (!d) { if (errno != ENOENT) printf("denied %s pid=%d errno=%d\n", kind, pid, errno); return; }
    errno = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char entry[384];
        snprintf(entry, sizeof entry, "%s/%s", path, e->d_name);
        keep(entry, kind, pid, 0);
    }
    if (errno) printf("denied %s pid=%d errno=%d\n", kind, pid, errno);
    closedir(d);
}

static void scan(void) {
    DIR *proc = opendir("/proc");
    struct dirent *e;
    int me = getpid();
    while (proc && (e = readdir(proc))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == me) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/exe", pid);
        keep(path, "exe", pid, 0);
        snprintf(path, sizeof path, "/proc/%d/root", pid);
        keep(path, "root", pid, O_DIRECTORY);
        snprintf(path, sizeof path, "/proc/%d/cwd", pid);
        keep(path, "cwd", pid, O_DIRECTORY);
        int i;
        for (i = 0; i < nseen && seen[i].pid != pid; i++) ;
        if (i == nseen && nseen < MAX) { seen[i].pid = pid; seen[i].looks = 0; nseen++; }
        if (i < nseen && seen[i].looks < 3) {  /* map_files and fds: a few looks per process */
            seen[i].looks++;
            scan_dir(pid, "map_files", "map_files");
            scan_dir(pid, "fd", "fd");
        }
    }
    if (proc) closedir(proc);
}

static int stop_asked(void) {
    struct pollfd p = {0, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

int main(int argc, char **argv) {
    double limit = argc > 1 ? atof(argv[1]) : 60.0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("scanning\n");
    fflush(stdout);
    do {
        scan();
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!stop_asked() && (t.tv_sec - t0.tv_sec) < limit);
    /* The runtime processes have exec'd or exited: reopen what was reached, for writing. */
    for (int i = 0; i < ngot; i++) {
        struct stat st;
        fstat(got[i].fd, &st);
        char self[64], seals[16] = "-", rdwr[16] = "-", wr[16] = "-";
        snprintf(self, sizeof self, "/proc/self/fd/%d", got[i].fd);
        if (S_ISREG(st.st_mode)) {
            int ro = open(self, O_RDONLY);
            if (ro >= 0) {
                int s = fcntl(ro, F_GET_SEALS);
                if (s >= 0) snprintf(seals, sizeof seals, "%d", s);
                close(ro);
            }
            int fd = open(self, O_RDWR);
            if (fd < 0) snprintf(rdwr, sizeof rdwr, "%d", errno);
            else {
                strcpy(rdwr, "ok");
                unsigned char byte;
                /* Only into a file on no filesystem (a memfd), and the byte that is there. */
                if (st.st_nlink == 0 && pread(fd, &byte, 1, 0) == 1) {
                    if (pwrite(fd, &byte, 1, 0) == 1) strcpy(wr, "ok");
                    else snprintf(wr, sizeof wr, "%d", errno);
                }
                close(fd);
            }
        }
        printf("%s pid=%d dev=%u:%u ino=%lu nlink=%lu mode=%o seals=%s rdwr=%s write=%s\n", got[i].kind,
               got[i].pid, major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino,
               (unsigned long)st.st_nlink, st.st_mode, seals, rdwr, wr);
    }
    printf("done\n");
    return 0;
}
"""

PTRACE_CAPS = [*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]
ALL_SEALS = exeseal.SEALS


@pytest.fixture(scope="module")
def attacker_rootfs(busybox_rootfs, tmp_path_factory) -> str:
    """A copy of the busybox rootfs with the attacker at ``/attacker`` (built with ``cc -static``)."""
    return rootfs_with_static_program(busybox_rootfs, tmp_path_factory.mktemp("exe-escape"), "attacker", ATTACKER_C)


def _host_files() -> set[tuple[int, int]]:
    """(dev, ino) of every file this (host) interpreter runs from: the executable, libpython, libc…"""
    paths = {"/proc/self/exe", os.path.realpath(sys.executable)}
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                paths.add(fields[5].strip())
    out = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out


def _rootfs_files(root: str) -> set[tuple[int, int]]:
    out = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            out.add((st.st_dev, st.st_ino))
    return out


def _parse(report: str) -> tuple[list[dict], list[dict]]:
    """The attacker's lines: (files reached, doors denied)."""
    reached, denied = [], []
    for line in report.splitlines():
        words = line.split()
        if not words or words[0] in ("scanning", "done"):
            continue
        if words[0] == "denied":
            fields = dict(w.split("=", 1) for w in words[2:])
            fields["kind"] = words[1]
            denied.append(fields)
            continue
        fields = dict(w.split("=", 1) for w in words[1:])
        fields["kind"] = words[0]
        major, minor = fields["dev"].split(":")
        fields["dev"] = os.makedev(int(major), int(minor))
        for key in ("ino", "nlink", "pid"):
            fields[key] = int(fields[key])
        fields["mode"] = int(fields["mode"], 8)
        fields["seals"] = -1 if fields["seals"] == "-" else int(fields["seals"])
        reached.append(fields)
    return reached, denied


def _check(report: str, rootfs: str, doors: bool = True) -> list[dict]:
    """Assert the report shows no way to a host file; returns the sealed images reached.

    ``doors`` False checks ``exe`` and ``map_files`` only, not ``root``/``cwd``/``fd``: an init
    forked into a shared PID namespace is visible from its fork, while it still has the host's
    root and, from the monitor, the monitor's fds (a door as wide as ptrace itself; see the
    module's last test).
    """
    reached, denied = _parse(report)
    host = _host_files()
    own = _rootfs_files(rootfs)
    root_st = os.stat(rootfs)
    host_root = os.stat("/")
    sealed = []
    problems = []
    for f in reached:
        key = (f["dev"], f["ino"])
        is_sealed_memfd = f["nlink"] == 0 and f["seals"] >= 0 and f["seals"] & ALL_SEALS == ALL_SEALS
        if f["kind"] == "exe" and is_sealed_memfd:
            sealed.append(f)
        if key in host:
            problems.append(f"reached a host file the runtime runs from: {f}")
        if not doors and f["kind"] in ("root", "cwd", "fd"):
            continue
        if f["kind"] == "fd" and stat.S_ISDIR(f["mode"]) and key != (root_st.st_dev, root_st.st_ino):
            problems.append(f"reached a directory outside the container through an fd: {f}")
        if f["kind"] in ("root", "cwd") and (key == (host_root.st_dev, host_root.st_ino) or
                                             key != (root_st.st_dev, root_st.st_ino)):
            problems.append(f"reached a directory outside the container: {f}")
        if f["kind"] == "exe" and key not in own and not is_sealed_memfd:
            problems.append(f"a process is backed by a file that is neither the container's nor a sealed image: {f}")
        if f["kind"] == "map_files":
            problems.append(f"map_files opened with CAP_SYS_PTRACE alone: {f}")
        if f["rdwr"] == "ok" and f["kind"] in ("exe", "map_files") and not is_sealed_memfd and key not in own:
            problems.append(f"opened for writing: {f}")
        if f["write"] == "ok":
            problems.append(f"wrote into: {f}")
    for d in denied:
        if d["kind"] == "map_files" and int(d["errno"]) not in (errno.EPERM, errno.EACCES, errno.ENOENT, errno.ESRCH):
            problems.append(f"map_files refused with an unexpected errno (gone: ENOENT/ESRCH): {d}")
    assert not problems, "\n".join(problems) + "\n--- attacker's report ---\n" + report
    return sealed


class _Attacker:
    """The attacker running with stdin/stdout on pipes: :meth:`stop` ends its scan and returns its report."""

    def __init__(self) -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.out = b""

    def process(self, init: bool = True) -> Process:
        caps = Capabilities(Bounding=PTRACE_CAPS, Effective=PTRACE_CAPS, Permitted=PTRACE_CAPS)
        return Process(["/attacker", "60"], init=init, stdin=self.stdin_r, stdout=self.stdout_w, capabilities=caps)

    def started(self) -> None:
        """Close our copies of its ends and wait until it scans."""
        os.close(self.stdin_r)
        os.close(self.stdout_w)
        wait_for(lambda: self._read(0.05) or b"scanning\n" in self.out, timeout=10, message="the attacker to start")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.stdout_r], [], [], timeout)
        if ready:
            chunk = os.read(self.stdout_r, 65536)
            self.out += chunk
            return not chunk
        return False

    def stop(self) -> str:
        os.write(self.stdin_w, b"x")
        os.close(self.stdin_w)
        deadline = time.monotonic() + 30
        while b"done\n" not in self.out and time.monotonic() < deadline:
            if self._read(0.5):
                break
        os.close(self.stdout_r)
        return self.out.decode(errors="replace")


def _attacker_container(runtime, rootfs, attacker, monitor=True):
    c = runtime.create(unique_id("atk"), Config(rootfs=rootfs, hostname="attacker"))
    c.run(attacker.process(), monitor=monitor)
    attacker.started()
    return c


def _released(container) -> bool:
    return container.status() in (Status.RUNNING, Status.STOPPED)


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "stage1"])
def test_created_init_in_a_shared_pid_namespace_is_a_sealed_image(runtime, attacker_rootfs, monitor):
    """Window 1: a created container B joins attacker A's PID namespace; B's init (a runtime
    process, blocked on the exec fifo) is visible in A until B is started."""
    attacker = _Attacker()
    a = _attacker_container(runtime, attacker_rootfs, attacker)
    ns = [Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWNET", "NEWCGROUP")]
    ns.append(Namespace("NEWPID", f"/proc/{a.state().init_process_pid}/ns/pid"))
    b = runtime.create(unique_id("tgt"), Config(rootfs=attacker_rootfs, namespaces=ns))
    b.start(Process(["/bin/sleep", "0.2"]), monitor=monitor)
    time.sleep(0.5)  # the attacker rescans /proc continuously: it has long found B's init
    b.exec()
    wait_for(lambda: _released(b), message="B to run its program")
    time.sleep(0.05)
    sealed = _check(attacker.stop(), attacker_rootfs, doors=False)
    assert sealed, "the attacker never reached B's init: the test did not test anything"


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "stage1"])
def test_exec_into_a_created_container_sees_a_sealed_init(runtime, attacker_rootfs, monitor):
    """Window 2: ``exec`` into a created container: its init is visible to the exec'd process."""
    attacker = _Attacker()
    c = runtime.create(unique_id("crt"), Config(rootfs=attacker_rootfs))
    c.start(Process(["/bin/sleep", "0.3"]), monitor=monitor)
    handle = c.start(attacker.process(init=False))
    attacker.started()
    time.sleep(0.3)
    c.exec()
    wait_for(lambda: _released(c), message="init to run its program")
    time.sleep(0.05)
    report = attacker.stop()
    assert handle.wait() == 0
    sealed = _check(report, attacker_rootfs)
    assert any(f["pid"] == 1 for f in sealed), "the attacker never reached init: the test did not test anything"


def test_exec_children_seen_while_scanning_are_sealed_images(runtime, attacker_rootfs):
    """Window 3: repeated ``exec`` into a running container while the attacker scans /proc: each
    exec child is visible from its fork in the container's PID namespace to its execve."""
    attacker = _Attacker()
    a = _attacker_container(runtime, attacker_rootfs, attacker)
    for _ in range(20):
        handle = a.start(Process(["/bin/true"], init=False))
        assert handle.wait() == 0
    _check(attacker.stop(), attacker_rootfs)


def test_sealed_image_keeps_the_interpreters_prefix_and_venv():
    """The memfd copy finds the same stdlib and venv as the interpreter it was copied from:
    ``sys.executable`` (argv[0]) leads Python to its prefix, not ``/proc/self/exe``."""
    fd = exeseal.sealed_executable()
    assert exeseal.is_sealed(fd) and exeseal.sealed_executable() == fd  # made once per process
    code = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.executable]))"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            os.execve(fd, [sys.executable, "-c", code], dict(os.environ))
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    import json
    assert json.loads(out) == [sys.prefix, sys.base_prefix, sys.executable]


def test_exec_does_not_wait_for_a_thread_holding_the_seal_lock(runtime, busybox_config):
    """A multi-threaded caller (the TUI, Ansible) may have a thread inside exeseal's lock while
    another execs: the image is made once, then neither the caller nor its forked stage 1 (which
    would wait forever on a lock copied held) takes the lock again."""
    c = runtime.create(unique_id("seallock"), busybox_config())
    c.run(Process(["/bin/sleep", "60"]))
    exeseal.sealed_executable()  # made (the monitor's start made it already)
    held, release = threading.Event(), threading.Event()

    def holder():
        with exeseal._lock:
            held.set()
            release.wait(60)

    result = {}

    def exec_true():
        try:
            result["status"] = c.start(Process(["/bin/true"], init=False)).wait()
        except BaseException as err:  # noqa: BLE001 - reported below
            result["error"] = err

    lock_thread = threading.Thread(target=holder)
    lock_thread.start()
    try:
        held.wait(10)
        worker = threading.Thread(target=exec_true, daemon=True)
        worker.start()
        worker.join(15)
        hung = worker.is_alive()
    finally:
        release.set()
        lock_thread.join()
    worker.join(30)
    assert not hung, "exec waited for exeseal's lock"
    assert result == {"status": 0}
