#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)

from __future__ import annotations

DOCUMENTATION = r'''
module: info
short_description: Facts about declarative-ct containers (state, pid, resources, health, stats)
version_added: 0.1.0
description:
  - Reads the containers of a state root on the target, for O(ignore:register). Changes nothing.
extends_documentation_fragment:
  - declarative_ct.dct.common
options:
  name:
    description:
      - The containers to report, in this order; a name with no container is reported with
        RV(containers[].exists=false). Without it, every container of the root, sorted by name.
    type: list
    elements: str
  stats:
    description:
      - Also read each running container's statistics from its cgroup (RV(containers[].stats)).
    type: bool
    default: false
attributes:
  check_mode:
    description: The module only reads; it runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: Linux targets.
    support: full
    platforms: posix
author:
  - declarative-ct developers (!UNKNOWN)
seealso:
  - module: declarative_ct.dct.container
  - module: declarative_ct.dct.apply
'''

EXAMPLES = r'''
- name: Every container of the default root
  declarative_ct.dct.info:
  register: dct

- name: Memory use of web
  declarative_ct.dct.info:
    name: [web]
    stats: true
  register: web

- name: Fail when web is not running
  ansible.builtin.assert:
    that: web.containers[0].status == 'running'

- name: Fail unless web's probe passes (a spec with health)
  ansible.builtin.assert:
    that: web.containers[0].health.status == 'healthy'
    fail_msg: "{{ web.containers[0].health.log[-1].output | default('no probe yet') }}"
'''

RETURN = r'''
containers:
  description: One entry per container.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container id.
      type: str
      sample: web
    exists:
      description: Whether there is such a container; when false, only RV(containers[].name) and
        RV(containers[].status=absent) are there.
      type: bool
      sample: true
    status:
      description: V(created) (init waits for start), V(running), V(pausing), V(paused), V(stopped), or V(absent);
        V(unknown) when its state file cannot be read (then only RV(containers[].error) is there besides).
      type: str
      sample: running
    error:
      description: Why the container's state cannot be read (C(dct delete --force) removes it).
      type: str
      returned: when RV(containers[].status=unknown)
    pid:
      description: The host PID of the container's init; null when stopped.
      type: int
      sample: 12345
    created:
      description: When this run of the container was created (RFC 3339, UTC).
      type: str
      sample: "2024-05-01T10:00:00.123456Z"
    managed:
      description: Made by declarative-ct (C(dct apply), these modules); false for C(dct run) and the like.
      type: bool
      sample: true
    source:
      description: The spec file it was created from, or C(ansible:<name>) when M(declarative_ct.dct.container)
        created it; null when not managed. It changes only when the container is created anew.
      type: str
      sample: /etc/dct/specs/web.yaml
    labels:
      description: The container's labels, without the reserved C(dct.*) ones.
      type: dict
      sample: {app: web}
    spec:
      description:
        - The normalized spec the container was created from (empty when not managed).
        - Fields that change without a new container (C(state), C(resources), C(restart), C(stop_timeout)…) keep
          their values at creation here; RV(containers[].status) and RV(containers[].resources) are the live ones.
      type: dict
    resources:
      description: The limits in force (libcontainer fields; bytes, CPU shares, µs; -1 is no limit).
      type: dict
      sample: {memory: 134217728, pids_limit: 64}
    exit:
      description: How the program ended, when stopped (C(exit_code), C(signal), C(oom_killed), C(exited_at)).
      type: dict
      sample: {exit_code: 0, signal: null, oom_killed: false, exited_at: "2024-05-01T10:05:00Z"}
    restarts:
      description: Restarts by the restart policy since the count was last reset; null when not managed.
      type: int
      sample: 0
    health:
      description:
        - Its health as the supervisor's probes found it (as C(dct status --json) gives it), when the spec it was
          created from declares a C(health) check; null when it declares none.
        - The probes run in the supervisor (C(dct watch), the service); a running container no probe has
          answered yet is V(starting).
      type: dict
      sample:
        status: unhealthy
        failing_streak: 3
        since: "2024-05-01T10:02:00.000Z"
        check: "http GET :8080/healthz"
        log:
          - {start: "2024-05-01T10:02:00.000Z", end: "2024-05-01T10:02:01.000Z", exit_code: 1,
             output: "connection refused"}
        stale: false
      contains:
        status:
          description: V(starting) (no probe has passed yet, or failures are still in the start period),
            V(healthy) (the last probe passed) or V(unhealthy) (C(retries) failures in a row).
          type: str
          sample: healthy
        failing_streak:
          description: Failed probes in a row that count (those in the start period do not).
          type: int
          sample: 0
        since:
          description: When the status last changed (RFC 3339, UTC); null before the first probe.
          type: str
          sample: "2024-05-01T10:00:05.000Z"
        check:
          description: The probe in a few words (C(exec test -f /tmp/ready), C(http GET :8080/healthz), C(tcp :5432)).
          type: str
          sample: "exec test -f /tmp/ready"
        log:
          description:
            - The last results, oldest first (up to 5), each with C(start) and C(end) (RFC 3339, UTC),
              C(exit_code) (0 is a pass) and C(output) (the command's output, the HTTP status line or the error).
          type: list
          elements: dict
        stale:
          description:
            - True for a running container nobody is probing now (no supervisor runs on the state root, or its
              last result is too old for its interval); the other keys are then as of the last result.
          type: bool
          sample: false
    stats:
      description:
        - With O(stats=true), the statistics as C(dct events --stats) prints them (C(cpu) times in ns, C(memory)
          in bytes, C(pids), C(blkio)); null when stopped.
      type: dict
      returned: when O(stats=true)
'''

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.declarative_ct.dct.plugins.module_utils import dct  # noqa: E402


def main():
    argument_spec = dict(
        name=dict(type="list", elements="str"),
        stats=dict(type="bool", default=False),
    )
    argument_spec.update(dct.ROOT_OPTION)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    dct.require_dct(module)
    rt = dct.runtime(module, module.params["root"])
    names = module.params["name"]
    if names is None:
        names = dct.container_names(rt)
    from declarative_ct.errors import ContainerError

    try:
        containers = [dct.facts(rt, name, stats=module.params["stats"]) for name in names]
    except ContainerError as err:  # a name that cannot be a container id
        module.fail_json(msg="name: %s" % err)
    module.exit_json(changed=False, containers=containers)


if __name__ == "__main__":
    main()
