"""Shared fixtures and helpers for every test (runtime library tests and, later, the CLI tests).

Integration tests (``@pytest.mark.integration``) start real containers: they need root and a
static ``/bin/busybox`` (Debian/Ubuntu package ``busybox-static``) and are skipped otherwise.

What this file provides:

* ``busybox_rootfs`` (session): absolute path of a busybox root filesystem built once.
* ``state_root``: a fresh, empty state root directory; every container left in it is killed and
  destroyed at teardown (``Runtime.cleanup`` for directories without ``state.json``).
* ``runtime``: a :class:`Runtime` on ``state_root``.
* ``busybox_config(**fields)``: a default :class:`Config` on the busybox rootfs.
* ``run_container(config, argv_or_process)``: create, start, exec and wait; a :class:`Finished`
  with the exit record and the monitored container's stdout/stderr (from its CRI log).
* ``register_state_root``: register another state root (e.g. one used by a child process) for
  the same teardown and for the session leak check.
* helpers ``unique_id(prefix)``, ``wait_for(predicate, timeout)``, ``reap_zombies()``,
  ``cgroup_dirs(id)``, also available as fixtures of the same name.
* zombie reaping: the pytest process is a child subreaper, so detached monitors and orphaned
  container inits re-parent to it (PID 1 here never reaps); zombies are reaped after every test,
  never from a background thread.
* a session-end leak check: no ``t-*`` cgroup under ``/sys/fs/cgroup/*/dct``, no mount mentioning
  the session's temporary directory, no state directory left in any registered root.

Test modules may import the plain helpers with ``from conftest import unique_id, wait_for`` (this
is the only ``conftest.py`` under ``tests/``; keep it that way or switch them to the fixtures).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from declarative_ct.configs import Config
from declarative_ct.errors import InvalidID
from declarative_ct.runtime import Container, Process, Runtime, Status, linux, monitord, store

BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "dct"
TEST_ID_PREFIX = "t-"

# Monitors exit soon after their last container, so none outlives the session (PID 1 never reaps).
os.environ.setdefault(monitord.LINGER_ENV, "0.2")

# Every state root handed out by the fixtures, checked at session end.
_STATE_ROOTS: list[str] = []
# Every id handed out by unique_id() in this session (to tell our cgroups from a concurrent session's).
_ISSUED_IDS: set[str] = set()


# -- plain helpers -------------------------------------------------------------------------
def exec_in(container: Container, args: list[str], **fields: Any) -> tuple[int, str]:
    """Run ``args`` in a running ``container`` (``Process(init=False)``) with stdout on a pipe.

    Returns ``(exit code, stdout)``.
    """
    r, w = os.pipe()
    try:
        handle = container.start(Process(list(args), init=False, stdout=w, **fields))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    return handle.wait(), out.decode()


def live_descendants() -> set[int]:
    """PIDs of the live (non-zombie) descendants of the test process."""
    import psutil

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def unique_id(prefix: str = "c") -> str:
    """A container id unique across runs: ``t-<prefix>-<8 hex>`` (cgroups live at global paths)."""
    cid = f"{TEST_ID_PREFIX}{prefix}-{uuid.uuid4().hex[:8]}"
    _ISSUED_IDS.add(cid)
    return cid


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01,
             message: str = "") -> Any:
    """Poll ``predicate`` every ``interval`` s until it returns a truthy value; return that value.

    Fails the test (``pytest.fail``) after ``timeout`` seconds, showing the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


def reap_zombies() -> list[tuple[int, int]]:
    """Reap every exited child of this process without blocking; the ``(pid, status)`` reaped."""
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == 0:
            break
        reaped.append((pid, status))
    return reaped


def cgroup_dirs(container_id: str, parent: str | None = None) -> list[str]:
    """The existing cgroup directories of ``container_id`` in every hierarchy (v1 and v2), under
    ``parent`` or, by default, under ``dct`` and every per-root ``dct-<hash>``."""
    parent = parent or f"{CGROUP_PARENT}*"
    return sorted(p for p in glob.glob(f"/sys/fs/cgroup/*/{parent}/{glob.escape(container_id)}")
                  + glob.glob(f"/sys/fs/cgroup/{parent}/{glob.escape(container_id)}") if os.path.isdir(p))


def _test_cgroup_dirs() -> set[str]:
    return {p for p in glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}*/{TEST_ID_PREFIX}*")
            + glob.glob(f"/sys/fs/cgroup/{CGROUP_PARENT}*/{TEST_ID_PREFIX}*") if os.path.isdir(p)}


def root_cgroup_parents(root: str) -> list[str]:
    """The per-root cgroup parents (``dct-<hash>``) of state root ``root`` that exist now."""
    parent = Runtime(root).cgroup_parent
    return sorted(glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}"))


def _other_pytest_sessions() -> list[int]:
    """PIDs of pytest processes on this machine that are not this one (a concurrent test session)."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(os.path.basename(a) in (b"pytest", b"py.test") for a in argv[:2]) or b"pytest" in argv[1:3]:
            out.append(int(name))
    return out


def _mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if text in line]


def _is_static_elf(path: str) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return False
            is64, little = head[4] == 2, head[5] == 1
            end = "<" if little else ">"
            if is64:
                phoff, = struct.unpack_from(end + "Q", head, 0x20)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36)
            else:
                phoff, = struct.unpack_from(end + "I", head, 0x1C)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 0x2A)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                p_type, = struct.unpack(end + "I", f.read(4))
                if p_type == 3:  # PT_INTERP
                    return False
            return True
    except OSError:
        return False


def _integration_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tests start real containers and need root (namespaces, cgroups, mounts)"
    if not os.path.exists(BUSYBOX):
        return f"integration tests need {BUSYBOX}: install the apt package busybox-static"
    if not _is_static_elf(BUSYBOX):
        return f"{BUSYBOX} is dynamically linked: install the apt package busybox-static"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _integration_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(skip)


# -- cleanup of a state root ---------------------------------------------------------------
def cleanup_state_root(root: str) -> list[str]:
    """Kill and destroy every container under ``root``; the problems met (empty when all went).

    Containers with a ``state.json``: SIGKILL to the whole cgroup (errors ignored), resume if
    still paused, wait for init to die, ``destroy()``; directories without one (an aborted
    create): ``Runtime.cleanup(id)``.
    """
    problems: list[str] = []
    if not os.path.isdir(root):
        return problems
    rt = Runtime(root)
    for name in sorted(os.listdir(root)):
        if name.startswith(store.MANAGER_PREFIX):
            continue
        try:
            store.validate_id(name)
        except InvalidID:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            continue
        if not os.path.exists(os.path.join(root, name, store.STATE_FILE)):
            try:
                rt.cleanup(name)
            except Exception as err:  # noqa: BLE001 - report everything, keep going
                problems.append(f"cleanup({name}): {err!r}")
            continue
        try:
            c = rt.load(name)
        except Exception as err:  # noqa: BLE001
            problems.append(f"load({name}): {err!r}")
            with contextlib.suppress(Exception):
                rt.cleanup(name)
            continue
        with contextlib.suppress(Exception):
            c.signal(signal.SIGKILL, all=True)
        with contextlib.suppress(Exception):
            if c.status() in (Status.PAUSED, Status.PAUSING):
                c.resume()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                if c.status() not in (Status.RUNNING, Status.PAUSED, Status.PAUSING):
                    break
            except Exception:  # noqa: BLE001
                break
            reap_zombies()
            time.sleep(0.01)
        # Let the monitor record the exit first: destroy() racing with its exit.json write can leave
        # the directory behind (tested in test_leaks.py); a bounded wait, as a monitor may not exist.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and c.exit_status() is None:
            time.sleep(0.01)
        try:
            c.destroy()
        except Exception as err:  # noqa: BLE001
            problems.append(f"destroy({name}): {err!r}")
        if os.path.exists(os.path.join(root, name)) or cgroup_dirs(name, c.config.cgroups.parent):
            with contextlib.suppress(Exception):
                rt.cleanup(name, c.config.cgroups.parent)
    reap_zombies()
    left = store.container_entries(root)
    if left:
        problems.append(f"state dirs still in {root}: {left}")
    return problems


def rootfs_with_static_program(busybox_rootfs: str, work: Any, name: str, c_source: str) -> str:
    """A copy of the busybox rootfs (under the directory ``work``) with ``c_source`` built at
    ``/<name>`` by ``cc -static``: the attackers of the security tests, which must not depend on the
    rootfs's libc. Skips the test when no C compiler or static libc is installed. Returns its real path."""
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("the attacker is a static C program built by the test: needs a C compiler (apt: gcc, libc6-dev)")
    root = os.path.realpath(os.path.join(str(work), "rootfs"))
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    source = os.path.join(str(work), f"{name}.c")
    with open(source, "w") as f:
        f.write(c_source)
    built = subprocess.run([cc, "-static", "-O2", "-o", os.path.join(root, name), source], capture_output=True,
                           text=True)
    if built.returncode != 0:
        pytest.skip(f"cc -static failed (static libc missing? apt: libc6-dev): {built.stderr.strip()[-300:]}")
    return root


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _child_subreaper() -> None:
    """Make pytest the subreaper of everything it starts (PID 1 on this machine never reaps)."""
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # needs no privilege
    yield
    reap_zombies()


@pytest.fixture(autouse=True)
def _reap_after_test(_child_subreaper: None) -> None:
    """Reap the monitors and inits that exited during the test (in the test's own thread)."""
    yield
    reap_zombies()


@pytest.fixture(scope="session", autouse=True)
def _session_leak_check(tmp_path_factory: pytest.TempPathFactory, _child_subreaper: None) -> None:
    """At session end, fail loudly if containers, cgroups or mounts of the tests were left behind."""
    before = _test_cgroup_dirs()
    base = str(tmp_path_factory.getbasetemp())
    yield
    reap_zombies()
    leaks: list[str] = []
    deadline = time.monotonic() + 5.0  # the monitors linger a moment after their last container
    while live_descendants() and time.monotonic() < deadline:
        time.sleep(0.05)
        reap_zombies()
    if live_descendants():
        leaks.append(f"processes left running: {sorted(live_descendants())}")
    for root in _STATE_ROOTS:
        left = store.container_entries(root)
        if left:
            leaks.append(f"state dirs left in {root}: {sorted(left)}")
        parents = root_cgroup_parents(root)
        if parents:
            leaks.append(f"per-root cgroup parents left for {root}: {parents}")
    new_cgroups = _test_cgroup_dirs() - before
    ours = {p for p in new_cgroups if os.path.basename(p) in _ISSUED_IDS}
    others = new_cgroups - ours
    if others:
        # t-* cgroups new since the session started but not ids of ours: possibly a test session
        # running concurrently on this machine, still cleaning up. Give it a moment.
        deadline = time.monotonic() + 5.0
        while others and time.monotonic() < deadline:
            time.sleep(0.1)
            others = {p for p in others if os.path.isdir(p)}
    if ours:
        leaks.append(f"cgroup dirs left: {sorted(ours)}")
    if others:
        concurrent = _other_pytest_sessions()
        if concurrent:
            print(f"\nwarning: t-* cgroups not from this session remain ({sorted(others)}); other test "
                  f"sessions are running (pids {concurrent}), so they are not counted as leaks")
        else:
            leaks.append(f"cgroup dirs left (ids not issued by unique_id): {sorted(others)}")
    _remove_test_data_roots(base)
    mounts = _mounts_mentioning(base)
    if mounts:
        leaks.append("mounts left in the host mount namespace:\n  " + "\n  ".join(mounts))
    if before:
        print(f"\nnote: test cgroups left by an earlier run (not this session): {sorted(before)}")
    if leaks:
        pytest.fail("the test session leaked:\n" + "\n".join(leaks), pytrace=False)


def _remove_test_data_roots(base: str) -> None:
    """Remove the data roots (logs, restart records: ``/var/lib/dct/roots/…``) of state roots under
    this session's temporary directory; other sessions' and real ones stay."""
    from declarative_ct.runtime import factory

    for path in factory.derived_data_roots(base):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox root filesystem, built once per session; its absolute real path.

    ``/bin/busybox`` plus a symlink per applet, ``etc proc dev sys tmp(1777) root``,
    ``/etc/passwd`` with root and ``user`` (1000), ``/etc/group`` with root, wheel (10) and user.
    """
    reason = _integration_skip_reason()
    if reason:
        pytest.skip(reason)
    import subprocess

    root = os.path.realpath(str(tmp_path_factory.mktemp("busybox") / "rootfs"))
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet == "busybox" or "/" in applet:
            continue
        link = os.path.join(root, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    for name, mode in (("etc", 0o755), ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("tmp", 0o1777),
                       ("root", 0o700), ("home", 0o755)):
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nwheel:x:10:user\nuser:x:1000:\n")
    return root


@pytest.fixture
def register_state_root() -> Callable[[str], str]:
    """Register a state root for teardown cleanup and the session leak check; returns it absolute."""
    roots: list[str] = []

    def register(path: str) -> str:
        path = os.path.abspath(str(path))
        roots.append(path)
        _STATE_ROOTS.append(path)
        return path

    yield register
    from declarative_ct.runtime import factory

    problems = []
    for root in roots:
        problems += cleanup_state_root(root)
        for data_root in factory.derived_data_roots(root):  # a root outside the session's tmp too
            shutil.rmtree(data_root, ignore_errors=True)
    if problems:
        pytest.fail("teardown could not clean up:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def state_root(tmp_path, register_state_root) -> str:
    """A fresh state root (not created yet); everything left in it is destroyed at teardown."""
    return register_state_root(os.path.join(str(tmp_path), "state"))


@pytest.fixture
def runtime(state_root: str) -> Runtime:
    """A :class:`Runtime` on a fresh state root; containers left in it are killed and destroyed."""
    return Runtime(state_root)


@pytest.fixture
def busybox_config(busybox_rootfs: str) -> Callable[..., Config]:
    """``busybox_config(**fields)``: a default :class:`Config` on the busybox rootfs (hostname ``box``)."""

    def make(**fields: Any) -> Config:
        fields.setdefault("hostname", "box")
        return Config(rootfs=busybox_rootfs, **fields)

    return make


@dataclass
class Finished:
    """What :func:`run_container` returns: the container (stopped, not destroyed) and its output."""

    container: Container
    exit: dict
    stdout: str
    stderr: str

    @property
    def exit_code(self) -> int:
        return self.exit["exit_code"]


def cri_entries(path: str) -> list[tuple[str, str, str, bytes]]:
    """The entries of one CRI log file: ``[(timestamp, stream, "F"/"P", text without the newline)]``."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            assert line.endswith(b"\n"), f"{path}: a torn entry {line[-80:]!r}"
            stamp, stream, tag, text = line[:-1].split(b" ", 3)
            out.append((stamp.decode(), stream.decode(), tag.decode(), text))
    return out


def read_log(container: Container, name: str) -> str:
    """What a monitored container wrote to ``name`` (``stdout``/``stderr``) in its current run, from
    its CRI log files (every file of the run, oldest first; ``P`` parts joined): '' if none."""
    from declarative_ct.runtime import logfiles

    stream = name.removesuffix(".log")
    path = container.log_path
    if path is None:
        return ""
    directory, run = os.path.dirname(path), int(os.path.basename(path).split(".")[0])
    text = b""
    for part in logfiles.run_files(directory, run):
        for _, entry_stream, tag, body in cri_entries(part):
            if entry_stream == stream:
                text += body + (b"\n" if tag == "F" else b"")
    return text.decode(errors="replace")


@pytest.fixture
def run_container(runtime: Runtime) -> Callable[..., Finished]:
    """``run_container(config, process_or_argv, prefix="run", timeout=10)``: create, start, exec, wait.

    Returns a :class:`Finished` with the exit record and what it wrote to stdout/stderr (its log). The
    container is left stopped in ``runtime`` (destroyed at teardown).
    """

    def run(config: Config, process: Process | list[str], prefix: str = "run", timeout: float = 10.0) -> Finished:
        if not isinstance(process, Process):
            process = Process(list(process))
        c = runtime.create(unique_id(prefix), config)
        c.start(process)
        c.exec()
        record = wait_for(c.exit_status, timeout, message=f"{c.id} to exit")
        return Finished(c, record, read_log(c, "stdout"), read_log(c, "stderr"))

    return run


@pytest.fixture(name="unique_id")
def _unique_id_fixture() -> Callable[[str], str]:
    return unique_id


@pytest.fixture(name="wait_for")
def _wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(name="reap_zombies")
def _reap_zombies_fixture() -> Callable[[], list]:
    return reap_zombies


@pytest.fixture(name="cgroup_dirs")
def _cgroup_dirs_fixture() -> Callable[..., list]:
    return cgroup_dirs


__all__ = ["BUSYBOX", "Finished", "cgroup_dirs", "cleanup_state_root", "cri_entries", "read_log", "reap_zombies",
           "unique_id", "wait_for"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest's hook
    """Count the real-client operations (tests/integration/test_clients_*.py) that passed per client
    and OCI runtime (an XPASS counts), so ``dct`` vs runc is visible in every run."""
    from clients import summarize

    reports = [r for key in ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
               for r in terminalreporter.stats.get(key, []) if hasattr(r, "when")]
    lines = summarize(reports)
    if lines:
        terminalreporter.section("operations passing with real clients (per OCI runtime)")
        for line in lines:
            terminalreporter.write_line(line)
