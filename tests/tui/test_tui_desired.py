"""The desired-state side as the TUI shows it (tui/desired.py): the spec diff, the plan's grouping."""

from __future__ import annotations

from tui.desired import DesiredEntry, group_actions, spec_diff


def _entry(**kw) -> DesiredEntry:
    desired = {"name": "web", "rootfs": "host", "process": {"args": ["sh"], "env": {}}, "state": "running",
               "resources": {"memory": 128 << 20}, "restart": "never", "labels": {}}
    applied = {**desired, "process": {"args": ["bash"], "env": {}}, "restart": "always",
               "resources": {"memory": 64 << 20}}
    base = dict(name="web", drift="drifted", desired_state="running", desired=desired, applied=applied,
                observed_resources={"memory": 64 << 20}, live_changes={"memory": 128 << 20})
    base.update(kw)
    return DesiredEntry(**base)


def test_spec_diff_names_each_field_and_what_the_reconciler_does():
    lines = {d.field: d for d in spec_diff(_entry(), "paused")}
    assert lines["process.args"].klass == "recreate"
    assert (lines["process.args"].observed, lines["process.args"].desired) == ('["bash"]', '["sh"]')
    assert (lines["resources.memory"].observed, lines["resources.memory"].desired,
            lines["resources.memory"].klass) == ("64Mi", "128Mi", "live")
    assert (lines["state"].observed, lines["state"].desired, lines["state"].klass) == ("paused", "running",
                                                                                         "lifecycle")
    assert lines["restart"].klass == "none"
    assert spec_diff(_entry(drift="missing"), None)[0].klass == "create"
    assert spec_diff(_entry(desired=None), "running") == []
    same = _entry(applied=_entry().desired, live_changes={})
    assert spec_diff(same, "running") == []


def test_spec_diff_shows_log_sizes_as_the_spec_writes_them():
    desired = {**_entry().desired, "logging": {"max_size": 20 << 20, "max_files": 3}}
    applied = {**desired, "logging": {"max_size": 10 << 20, "max_files": 3}}
    [line] = spec_diff(_entry(desired=desired, applied=applied, live_changes={}), "running")
    assert (line.field, line.observed, line.desired, line.klass) == ("logging.max_size", "10Mi", "20Mi", "recreate")


def test_plan_actions_group_in_class_order():
    actions = [{"container": "b", "class": "live"}, {"container": "a", "class": "prune"},
               {"container": "c", "class": "create"}, {"container": "a", "class": "live"}]
    groups = group_actions(actions)
    assert [k for k, _ in groups] == ["create", "live", "prune"]
    assert [a["container"] for a in groups[1][1]] == ["a", "b"]



def test_spec_diff_state_line_follows_what_each_status_satisfies():
    """The state line of the spec diff: a status that already satisfies the declared state (pausing
    counts as paused, created as stopped) shows none; unknown always shows."""
    def state_line(want, status):
        entry = _entry(desired={**_entry().desired, "state": want})
        return [(d.observed, d.desired) for d in spec_diff(entry, status) if d.field == "state"]

    assert state_line("paused", "pausing") == []
    assert state_line("stopped", "created") == []
    assert state_line("running", "created") == [("created", "running")]
    assert state_line("running", "unknown") == [("unknown", "running")]
    assert state_line("paused", "running") == [("running", "paused")]
    assert state_line("running", "running") == []
