"""The Ansible collection (``ansible_module/``) for the tests: importable, installed, and run with ansible-playbook.

* :func:`link_tree` makes ``<dir>/ansible_collections/declarative_ct/dct`` a symlink to the source
  tree (what the module files import as ``ansible_collections.declarative_ct.dct``).
* :func:`install` builds the collection with ``ansible-galaxy collection build`` and installs the
  tarball with ``ansible-galaxy collection install -p`` (what a user does).
* :class:`Ansible` runs ``ansible-playbook`` (and ``ansible-doc``) as subprocesses of the venv,
  with that collection path and every Ansible directory inside the test's temporary directory;
  playbook results come from the ``results_json`` stdout callback of ``tests/ansible_plugins``:
  :meth:`Ansible.playbook` writes plays and an inventory and returns a :class:`Run` (the
  results by task name and host, and the recap).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "ansible_module"
BIN = Path(sys.executable).parent
NAMESPACE, NAME = "declarative_ct", "dct"


def link_tree(base: Path) -> Path:
    """``base/ansible_collections/declarative_ct/dct`` → the source tree; returns ``base`` (a collections path)."""
    parent = base / "ansible_collections" / NAMESPACE
    parent.mkdir(parents=True, exist_ok=True)
    link = parent / NAME
    if not link.exists():
        link.symlink_to(COLLECTION, target_is_directory=True)
    return base


def ansible_env(work: Path, collections: Path) -> dict[str, str]:
    """The environment for ansible-* commands: our collection path, every Ansible directory under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "ansible.cfg"  # empty: no ansible.cfg of the machine or the user applies
    config.touch()
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(work / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0", "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "ansible_plugins" / "callback"),
    })
    return env


def install(work: Path) -> Path:
    """Build the collection and install the tarball under ``work/collections``; that collections path."""
    env = ansible_env(work, work / "collections")
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path",
                            str(work)], env=env, capture_output=True, text=True, timeout=60)
    assert build.returncode == 0, build.stdout + build.stderr
    [tarball] = work.glob(f"{NAMESPACE}-{NAME}-*.tar.gz")
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p",
                           str(work / "collections")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return work / "collections"


@dataclass
class Run:
    """One ansible-playbook run: exit code, output, and (results_json callback) the results and the recap."""

    rc: int
    stdout: str
    stderr: str
    data: dict = field(default_factory=dict)

    def result(self, task: str, host: str = "localhost") -> dict:
        """The result of the last task named ``task`` on ``host``."""
        found = [t["hosts"][host] for play in self.data["plays"] for t in play["tasks"]
                 if t["task"]["name"] == task and host in t["hosts"]]
        assert found, f"no result of task {task!r} on {host}: {self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return found[-1]

    def stats(self, host: str = "localhost") -> dict:
        """The recap of ``host``: ok, changed, failures, ignored, skipped…"""
        return self.data["stats"][host]


class Ansible:
    """ansible-playbook and ansible-doc of the venv, with the collection at ``collections``."""

    def __init__(self, work: Path, collections: Path) -> None:
        self.work = work
        self.env = ansible_env(work, collections)
        self.count = 0

    def inventory(self, hosts: dict[str, dict]) -> Path:
        """A YAML inventory of local hosts (each with ``vars``); every host runs the venv's Python."""
        self.count += 1
        path = self.work / f"inventory-{self.count}.yml"
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        path.write_text(yaml.safe_dump({"all": {"hosts": {h: {**local, **v} for h, v in hosts.items()}}}))
        return path

    def playbook(self, plays: list[dict] | str, inventory: Path, *args: str, callback: str = "results_json",
                 extra_vars: dict | None = None) -> Run:
        """Run ``plays`` (data, or the text of a playbook) against ``inventory``; with the results_json callback,
        :attr:`Run.data` holds its output."""
        self.count += 1
        path = self.work / f"playbook-{self.count}.yml"
        path.write_text(plays if isinstance(plays, str) else yaml.safe_dump(plays, sort_keys=False))
        argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(path), *args]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        env = dict(self.env, ANSIBLE_STDOUT_CALLBACK=callback)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=self.work)
        run = Run(done.returncode, done.stdout, done.stderr)
        if callback == "results_json":
            try:
                run.data = json.loads(done.stdout)
            except ValueError:
                raise AssertionError(f"ansible-playbook printed no JSON (rc {done.returncode}):\n{done.stdout}\n"
                                     f"{done.stderr}") from None
        return run

    def doc(self, *modules: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ansible-doc"), *modules], env=self.env, capture_output=True, text=True,
                              timeout=60, cwd=self.work)
