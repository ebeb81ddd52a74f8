#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)

from __future__ import annotations

DOCUMENTATION = r'''
module: container
short_description: Converge one declarative-ct container from inline spec options
version_added: 0.1.0
description:
  - Makes one container on the target match the options, which are the fields of a declarative-ct spec
    document (the format of C(dct apply) files, C(dct schema)) plus O(state), O(recreate) and O(root).
  - The options are validated as a spec file is; the module then plans with the reconciler (the plan
    C(dct plan) prints) and applies that plan as C(dct apply) does. A change of O(resources) is written to the
    running container in place (same init process); a change of a field only a new container can take
    (O(rootfs), O(process), O(mounts), O(namespaces), O(hostname), O(network), O(labels)) recreates it; a change of
    O(state) starts, pauses, resumes or stops it.
  - Unset options and options set to the spec's default compare equal; an option, a key of O(process.env) or a
    limit removed from the task is noticed (a removed limit is lifted).
  - The container is labelled as made by declarative-ct with the source C(ansible:<name>) instead of a spec
    file, so M(declarative_ct.dct.apply) with O(declarative_ct.dct.apply#module:prune=true) never removes it.
    A container of the same name made by C(dct apply) or M(declarative_ct.dct.apply) is taken over; one not made
    by declarative-ct (C(dct run)) is refused.
  - Relative host paths have no spec file to resolve against here; O(rootfs), O(mounts[].source) and
    O(reload_on) take absolute paths on the target.
extends_documentation_fragment:
  - declarative_ct.dct.spec
  - declarative_ct.dct.common
options:
  state:
    description:
      - V(started) (the default) - the container exists and its program runs. A container whose program exited
        is started again only as its O(restart) policy says (as C(dct apply) does; the plan's note is a warning);
        O(recreate=true) runs it anew whatever the policy.
      - V(present) - the container exists with this configuration; a new one is created and not started
        (its init waits, C(dct start) or V(started) runs the program); an existing one keeps its run state,
        also across a recreate.
      - V(stopped) - the container exists and its program does not run (a running one is stopped with
        O(stop_signal), then SIGKILL after O(stop_timeout)); a new one is created, not started.
      - V(paused) - the container exists and all its processes are frozen.
      - V(absent) - no such container (stopped, then removed); O(process) may be left out.
    type: str
    choices: [present, started, stopped, paused, absent]
    default: started
  recreate:
    description:
      - Recreate the container even when nothing changed (it keeps the O(state) asked for).
      - A recreate always has its cause in RV(actions); with V(false), only a changed field recreates.
    type: bool
    default: false
attributes:
  check_mode:
    description: Returns the plan C(dct plan) would print, with the actions as RV(actions); nothing is touched
      (no file, no cgroup, no state; not even the apply lock).
    support: full
  diff_mode:
    description: Field-level before/after of the container, in the normalized spec form the plan compares
      (sizes in bytes, limits by their libcontainer names such as C(pids_limit)).
    support: full
  platform:
    description: Linux targets.
    support: full
    platforms: posix
author:
  - declarative-ct developers (!UNKNOWN)
seealso:
  - module: declarative_ct.dct.apply
  - module: declarative_ct.dct.info
'''

EXAMPLES = r'''
- name: A web server, 64 MiB, half a CPU
  declarative_ct.dct.container:
    name: web
    process:
      args: [/usr/bin/python3, -m, http.server, "8080", --bind, 127.0.0.1]
      env: {PYTHONUNBUFFERED: "1"}
    resources: {memory: 64Mi, cpus: 0.5, pids: 64}
    restart: on-failure:3
    stop_timeout: 2

- name: More memory (written to the running container, no restart)
  declarative_ct.dct.container:
    name: web
    process:
      args: [/usr/bin/python3, -m, http.server, "8080", --bind, 127.0.0.1]
      env: {PYTHONUNBUFFERED: "1"}
    resources: {memory: 128Mi, cpus: 0.5, pids: 64}
    restart: on-failure:3
    stop_timeout: 2

- name: A job in its own root filesystem, created but not started
  declarative_ct.dct.container:
    name: job
    rootfs: /srv/rootfs/job
    process: {args: [/bin/sh, -c, "run-job"], user: "1000"}
    mounts:
      - {source: /srv/data, destination: /data, readonly: true}
    state: present
    root: /run/dct-jobs

- name: Freeze it
  declarative_ct.dct.container:
    name: web
    process: {args: [/usr/bin/python3, -m, http.server, "8080", --bind, 127.0.0.1]}
    state: paused

- name: Remove it (stopped with the stop_timeout it was made with)
  declarative_ct.dct.container:
    name: web
    state: absent
'''

RETURN = r'''
actions:
  description:
    - The actions of the plan, in the order they ran; in check mode, the actions that would run.
    - Empty when the container already matched (then RV(ignore:changed) is false).
  returned: always
  type: list
  elements: dict
  contains:
    container:
      description: The container's name.
      type: str
      sample: web
    class:
      description: V(create), V(recreate), V(live) (resources in place), V(lifecycle) (start, pause, resume, stop,
        restart), V(signal) (a O(reload_on) file changed) or V(destroy).
      type: str
      sample: live
    cause:
      description: Why, field by field.
      type: str
      sample: resources.memory 64Mi → 128Mi
    steps:
      description: The runtime operations, in order (stop, destroy, create, start, pause, resume, set, signal).
      type: list
      elements: str
      sample: [set]
    resources:
      description: The limits a V(set) step writes (libcontainer fields; bytes, shares, µs; -1 lifts a limit).
      type: dict
      sample: {memory: 134217728}
    result:
      description: V(ok), V(failed), V(skipped); V(planned) in check mode.
      type: str
      sample: ok
    error:
      description: Why the action failed (only when it did).
      type: str
      returned: when failed
container:
  description:
    - The container after the task (in check mode, as it is now); see M(declarative_ct.dct.info) for the keys.
  returned: when the options are valid
  type: dict
  sample:
    name: web
    exists: true
    status: running
    pid: 12345
    created: "2024-05-01T10:00:00.123456Z"
    managed: true
    source: ansible:web
    labels: {}
    spec: {name: web, state: running, resources: {memory: 134217728}}
    resources: {memory: 134217728}
    exit: null
    restarts: 0
plan:
  description: The plan as C(dct plan --json) gives it, limited to this container.
  returned: when the options are valid
  type: dict
  contains:
    actions:
      description: The planned actions (as RV(actions), without results).
      type: list
      elements: dict
    notes:
      description: What was left alone and why (an exited container its restart policy keeps down…).
      type: list
      elements: str
    errors:
      description: Why the container could not be reconciled (a name taken by a container not made by declarative-ct).
      type: list
      elements: str
    fingerprint:
      description: A digest of the containers observed when planning.
      type: str
errors:
  description: Every problem with the options, each as the option (dotted for suboptions), a colon and the reason.
  returned: when the options are invalid
  type: list
  elements: str
  sample: ["resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")"]
'''

import dataclasses  # noqa: E402 - after the documentation, as Ansible modules do

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.declarative_ct.dct.plugins.module_utils import dct  # noqa: E402

# The spec's state for each of the module's; present is settled against the container found (PRESENT).
SPEC_STATE = {"started": "running", "stopped": "stopped", "paused": "paused", "absent": "absent",
              "present": "stopped"}
PRESENT = {"running": "running", "paused": "paused", "pausing": "paused", "created": "stopped", "stopped": "stopped"}
# state: absent needs no process; validation needs one (nothing is created from it).
PLACEHOLDER_PROCESS = {"args": ["/bin/true"]}


def main():
    spec_options = dct.spec_options()
    argument_spec = dict(spec_options)
    argument_spec.update(dct.ROOT_OPTION)
    argument_spec.update(
        state=dict(type="str", default="started", choices=["present", "started", "stopped", "paused", "absent"]),
        recreate=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    dct.require_dct(module)
    params = module.params
    state = params["state"]
    data = {key: params[key] for key in spec_options if params[key] is not None}
    name = data["name"]
    if state == "absent":
        data.setdefault("process", PLACEHOLDER_PROCESS)
    data["state"] = SPEC_STATE[state]
    doc = dct.validate(module, data, "ansible:%s" % name)  # before anything is touched
    rt = dct.runtime(module, params["root"])

    def docs(observed):
        obs = observed.get(name)
        update = {}
        if obs is not None and state == "present":
            update["state"] = PRESENT[obs.status.value]
        if obs is not None and state == "absent":  # stop it as it was made to be stopped, unless told
            update.update({k: obs.applied[k] for k in ("stop_signal", "stop_timeout")
                           if k not in data and k in obs.applied})
        if not update:
            return [doc]
        return [dataclasses.replace(doc, spec=doc.spec.model_copy(update=update))]

    done = dct.converge(module, rt, docs, recreate=[name] if params["recreate"] else ())
    plan = done.plan
    mine = name + ":"
    result = {
        "changed": dct.changed(done),
        "actions": dct.action_results(done),
        "container": dct.facts(rt, name),
        "plan": {"actions": [a.to_dict() for a in plan.actions], "errors": plan.errors,
                 "notes": [n for n in plan.notes if n.startswith(mine)], "fingerprint": plan.fingerprint},
    }
    if module._diff:
        obs = done.observed.get(name)
        result["diff"] = dct.diff(name, plan.actions[0] if plan.actions else None, obs, done.docs[0])
        if state == "present" and obs is not None and result["diff"]["after"].get("state") != "absent":
            result["diff"]["after"]["state"] = result["diff"]["before"].get("state", obs.status.value)
    for note in result["plan"]["notes"]:
        module.warn(note)
    problems = dct.failures(done)
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
