"""``dct tui`` as a command: its arguments, bad input as one clear line (exit 1), and a CLI whose
other verbs never import Textual."""

from __future__ import annotations

import subprocess
import sys

from dct_cli import DCT, REPO


def dct(*args: str, root: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DCT, "--root", root, *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_bad_input_is_one_clear_error_not_a_traceback(tmp_path):
    root = str(tmp_path / "root")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: web\nrootfs: host\nprocess: {args: [sh]}\nstate: runing\n")
    for args, message in (
            (("tui", "--interval", "0"), "dct tui: --interval 0: too short: 0.2s at least"),
            (("tui", "--interval", "0.01"), "dct tui: --interval 0.01: too short: 0.2s at least"),
            (("tui", "--interval", "-1"), "dct tui: --interval -1: too short: 0.2s at least"),
            (("tui", "--interval", "2h"), "dct tui: --interval 2h: too long: 1h at most"),
            (("tui", "--interval", "soon"), "dct tui: --interval: 'soon' is not a duration"),
            (("tui", "--interval", "2s"), "dct tui: needs a terminal"),  # accepted, as dct events takes it
            (("tui", "--interval", "500ms"), "dct tui: needs a terminal"),
            (("tui", str(tmp_path / "missing.yaml")), "missing.yaml:0:0: -: no such file or directory"),
            (("tui", str(bad)), "bad.yaml:4:8: state:"),
            (("tui",), "dct tui: needs a terminal"),
            (("tui", "--bogus"), "unrecognized arguments: --bogus")):
        r = dct(*args, root=root)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = subprocess.run([*DCT, "--root", "/", "tui"], capture_output=True, text=True, cwd=REPO,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 1 and r.stderr.strip() == "dct: refusing '/' as the state root"


def test_help_lists_tui_and_no_other_verb_imports_textual():
    r = subprocess.run([*DCT, "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "tui" in r.stdout
    code = ("import sys; from declarative_ct.cli import main; main.build_parser(); main.parse(['tui', '--readonly']); "
            "main.main(['--root', '/nonexistent-dct-root', 'list', '-q']); "
            "sys.exit(1 if any(m.split('.')[0] in ('textual', 'tui') for m in sys.modules) else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
