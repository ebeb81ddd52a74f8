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
    (O(rootfs), O(process), O(mounts), O(namespaces), O(hostname), O(network), O(labels), O(seccomp))
    recreates it; a change of O(state) starts, pauses, resumes or stops it.
  - The options of a task are the whole spec of the container, as a spec file is; an option left out means
    its default, not "as the container has it". Each task for a container repeats every option (a YAML anchor
    or a variable helps, see the examples); a task that gives only O(process) and O(state) recreates the
    container without the limits, restart policy and stop timeout of the earlier tasks.
  - Unset options and options set to the spec's default compare equal; an option, a key of O(process.env) or a
    limit removed from the task is noticed (a removed limit is lifted).
  - A container the module creates is labelled as made by declarative-ct with the source C(ansible:<name>)
    instead of a spec file, so M(declarative_ct.dct.apply) with O(declarative_ct.dct.apply#module:prune=true)
    never removes it.
  - A container of the same name made by C(dct apply) or M(declarative_ct.dct.apply) is converged to the options,
    but its source stays its spec file until the module recreates it (a changed field that needs a new
    container, or O(recreate=true)); the module warns while it does. Until then C(dct apply --prune) or
    M(declarative_ct.dct.apply) with O(declarative_ct.dct.apply#module:prune=true) of that file's paths removes it
    once the file no longer names it, and applying the file converges it back to the file.
    One not made by declarative-ct (C(dct run)) is refused.
  - Relative host paths have no spec file to resolve against here; O(rootfs), O(mounts[].source),
    O(reload_on) and a O(seccomp) profile take absolute paths on the target.
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
  wait:
    description:
      - When the task acted on the container, wait until it is in the O(state) asked for and, with O(health)
        and O(state=started), healthy (as C(dct apply --wait) does). The probes run in the task meanwhile.
      - A container that does not get there within O(wait_timeout) (unhealthy, exited, still starting) fails the
        task, with its status and last probe output in C(msg); RV(wait) gives its health.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds, from the start of the actions, that the task waits in all - for the O(depends_on) conditions
        (C(healthy), C(completed)) a container's action waits for (a condition not met by then skips it, with or
        without O(wait)), then for O(wait).
    type: int
    default: 60
notes:
  - A change of O(resources) while the container is stopped (O(state=stopped), or its program exited) is
    neither written nor reported (RV(actions) is empty), as a stopped container has no processes to limit. It
    takes effect when the container is next started (O(state=started) creates it anew from the options), as
    with C(dct apply).
  - The C(spec) of RV(container) is the spec the container was created from; a live update shows in its
    C(resources).
attributes:
  check_mode:
    description: Returns the plan C(dct plan) would print, with the actions as RV(actions); nothing is touched
      (no file, no cgroup, no state; not even the apply lock), nothing is probed and O(wait) does not wait.
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
# The tasks for one container repeat all its options (an option left out means its default). Here the
# options that stay the same are a YAML anchor (&web) that the later tasks merge (<<: *web); each task
# adds the others (a key both merged and given would make Ansible warn of a duplicate key).
- name: A web server, 64 MiB, half a CPU (rootfs host - the host's /usr/bin/python3); done once it answers
  declarative_ct.dct.container:
    <<: &web
      name: web
      process:
        args: [/usr/bin/python3, -m, http.server, "8080", --bind, 127.0.0.1]
        env: {PYTHONUNBUFFERED: "1"}
      health: {http: {port: 8080, path: /}, interval: 1s}  # from inside its network namespace
      restart: on-failure:3
      stop_timeout: 2
    resources: {memory: 64Mi, cpus: 0.5, pids: 64}
    wait: true  # until the probe passes (wait_timeout: 60 seconds at most)

- name: More memory (written to the running container, no restart)
  declarative_ct.dct.container:
    <<: *web
    resources: &web_resources {memory: 128Mi, cpus: 0.5, pids: 64}

- name: Freeze it (the same options, state paused - only a pause)
  declarative_ct.dct.container:
    <<: *web
    resources: *web_resources
    state: paused

- name: Remove it (stopped with the stop_timeout it was made with)
  declarative_ct.dct.container:
    name: web
    state: absent

# /srv/rootfs/job (a root filesystem holding /bin/sh and run-job) and /srv/data are placeholders
# for directories of your own on the target: both must exist.
- name: A job in its own root filesystem and state root, created but not started
  declarative_ct.dct.container:
    name: job
    rootfs: /srv/rootfs/job
    process: {args: [/bin/sh, -c, "run-job"], user: "1000"}
    mounts:
      - {source: /srv/data, destination: /data, readonly: true}
    state: present
    root: /run/dct-jobs
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
      description: Why, field by field; a changed value is shown as C(old → new) (the arrow is U+2192).
      type: str
      sample: resources.memory 64Mi -> 128Mi
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
    - Its C(spec) is the spec the container was created from; a live update shows in its C(resources) (the
      limits in force), not there. The sample (C(spec) abridged) is the container after the second example,
      64 MiB at creation and 128 MiB now.
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
    spec: {name: web, rootfs: host, state: running, restart: "on-failure:3", stop_timeout: 2.0,
           resources: {memory: 67108864, cpu_quota: 50000, cpu_period: 100000, pids_limit: 64}}
    resources: {memory: 134217728, cpu_quota: 50000, cpu_period: 100000, pids_limit: 64}
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
wait:
  description:
    - What O(wait) found, once the container was ready or O(wait_timeout) ran out (the shape of the apply
      module's RV(declarative_ct.dct.apply#module:wait)). C(ready) says whether it was; under C(containers), by name, its C(ready), C(status), C(health)
      (C(starting), C(healthy), C(unhealthy); null without O(health)), C(detail) and C(last_output).
    - Empty C(containers) (and C(ready) true) when the task did nothing to the container.
  returned: when O(wait) is true, not in check mode
  type: dict
  sample:
    ready: true
    timeout: 60
    containers:
      web: {name: web, ready: true, status: running, health: healthy, detail: healthy, last_output: "exit 0: HTTP 200 OK"}
errors:
  description: Every problem with the options, each as the option (dotted for suboptions), a colon and the reason.
  returned: when the options are invalid
  type: list
  elements: str
  sample: ["resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")"]
problems:
  description: The same problems as RV(errors), each as its option (C(field), dotted for suboptions) and its C(message).
  returned: when the options are invalid
  type: list
  elements: dict
  sample: [{"field": "resources.memory", "message": "'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")"}]
'''

import dataclasses  # noqa: E402 - after the documentation, as Ansible modules do

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.declarative_ct.dct.plugins.module_utils import dct  # noqa: E402

# The spec's state for each of the module's; present is settled against the container found (dct.satisfied_state).
SPEC_STATE = {"started": "running", "stopped": "stopped", "paused": "paused", "absent": "absent",
              "present": "stopped"}
# state: absent needs no process; validation needs one (nothing is created from it).
PLACEHOLDER_PROCESS = {"args": ["/bin/true"]}


def main():
    spec_options = dct.spec_options()
    argument_spec = dict(spec_options)
    argument_spec.update(dct.ROOT_OPTION)
    argument_spec.update(dct.WAIT_OPTIONS)
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
    wait, wait_timeout = dct.wait_options(module)
    rt = dct.runtime(module, params["root"])

    def docs(observed):
        obs = observed.get(name)
        update = {}
        if obs is not None and state == "present":
            update["state"] = dct.satisfied_state(obs.status)
        if obs is not None and state == "absent":  # stop it as it was made to be stopped, unless told
            update.update({k: obs.applied[k] for k in ("stop_signal", "stop_timeout")
                           if k not in data and k in obs.applied})
        if not update:
            return [doc]
        return [dataclasses.replace(doc, spec=doc.spec.model_copy(update=update))]

    done = dct.converge(module, rt, docs, recreate=[name] if params["recreate"] else (), wait=wait,
                        wait_timeout=wait_timeout)
    plan = done.plan
    mine = name + ":"
    result = {
        "changed": dct.changed(done),
        "actions": dct.action_results(done),
        "container": dct.facts(rt, name, desired=done.docs[0].spec),
        "plan": {"actions": [a.to_dict() for a in plan.actions], "errors": plan.errors,
                 "notes": [n for n in plan.notes if n.startswith(mine)], "fingerprint": plan.fingerprint},
    }
    if done.ready is not None:
        result["wait"] = dct.wait_result(done, wait_timeout)
    if module._diff:
        obs = done.observed.get(name)
        result["diff"] = dct.diff(name, plan.actions[0] if plan.actions else None, obs, done.docs[0])
        if state == "present" and obs is not None and result["diff"]["after"].get("state") != "absent":
            result["diff"]["after"]["state"] = result["diff"]["before"].get("state", obs.status.value)
    for note in dct.warnings(done, [name]):
        module.warn(note)
    after = result["container"]
    # in check mode the facts are the container as it is: a planned create gives it this task's source
    renewed = module.check_mode and any("create" in a["steps"] for a in result["actions"])
    if after.get("managed") and after.get("source") != doc.source and not renewed:
        module.warn("%s: made from %s, which stays its source until this module recreates it (recreate: true): "
                    "prune of that file's paths (dct apply --prune, declarative_ct.dct.apply with prune: true) "
                    "removes it once the file no longer names it" % (name, after["source"]))
    problems = dct.failures(done) + dct.wait_failures(done)
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
