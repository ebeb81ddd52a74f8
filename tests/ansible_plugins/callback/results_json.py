"""A stdout callback for the tests: every task result and the recap as one JSON document.

ansible-core has no JSON stdout callback of its own (``json`` lives in the ansible.posix
collection, which the tests do not install). Output: ``{"plays": [{"play": {"name"}, "tasks":
[{"task": {"name"}, "hosts": {host: result}}]}], "stats": {host: {ok, changed, failures, …}}}``;
a result keeps its ``diff`` (the default callback's helpers drop it).
"""

from __future__ import annotations

import json
import sys

from ansible.plugins.callback import CallbackBase


def _host(result):
    return (getattr(result, "host", None) or result._host).get_name()


def _result(result):
    data = getattr(result, "result", None)
    if data is None:
        data = result._result
    return {k: v for k, v in data.items() if not k.startswith("_ansible")}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def _record(self, result, **extra):
        self.plays[-1]["tasks"][-1]["hosts"][_host(result)] = dict(_result(result), **extra)

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        out = {"plays": self.plays, "stats": {h: stats.summarize(h) for h in sorted(stats.processed)}}
        sys.stdout.write(json.dumps(out, default=str) + "\n")
