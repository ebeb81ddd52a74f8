#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)

from __future__ import annotations

DOCUMENTATION = r'''
module: apply
short_description: Apply declarative-ct spec files and directories, as dct apply does
version_added: 0.1.0
description:
  - Loads the spec files and directories of O(paths) on the target (every error of every file at once,
    each as C(file:line:col:) then the field and the reason, and nothing touched if there is one), plans
    against the containers of the state root and applies the plan, as C(dct apply) does.
  - Containers are applied in the order their C(depends_on) gives, independent ones in parallel; a failed
    action fails its container only, the containers depending on it are skipped, and the task fails after
    the others were applied.
  - A container that exited is restarted only as its C(restart) policy says, as C(dct apply) does.
  - To copy specs to the target first, use M(ansible.builtin.copy) or M(ansible.builtin.template) and register
    their result, or let this module pick up the files where they are.
extends_documentation_fragment:
  - declarative_ct.dct.common
options:
  paths:
    description:
      - Spec files and directories on the target, as absolute paths. A directory means its C(*.yaml) and
        C(*.yml) files in name order (not recursive, dotfiles and editor backups skipped); a file holds one
        or more YAML documents, one container each. Relative host paths in a spec resolve against its file.
    type: list
    elements: path
    required: true
  prune:
    description:
      - Also stop and remove the containers of declarative-ct whose spec file lies in O(paths) (one of the files,
        or directly in one of the directories) but which no spec names any more.
      - Containers from other paths, made by M(declarative_ct.dct.container) or not made by declarative-ct are
        never touched.
      - A container is "from" the spec file it was created from (its C(source), see M(declarative_ct.dct.info)).
        One that M(declarative_ct.dct.container) took over from a file here keeps that file as its source until
        the container module recreates it, and is pruned with the file's other containers until then.
    type: bool
    default: false
  parallel:
    description:
      - How many independent containers are acted on at once; V(0) means the number of CPUs.
    type: int
    default: 0
  wait:
    description:
      - After the actions, wait until every container acted on is in its spec's C(state) and, where its spec
        declares C(health), healthy (as C(dct apply --wait) does). The probes run in the task meanwhile.
      - A container that does not get there within O(wait_timeout) (unhealthy, exited, still starting) fails the
        task, named in C(msg) with its status and last probe output; RV(wait) gives each one's health.
      - A one-shot container that another spec depends on with C(completed) is ready once it exited with code 0.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds, from the start of the actions, that the task waits in all - for the C(depends_on) conditions
        (C(healthy), C(completed)) a container's action waits for (a condition not met by then skips it, with or
        without O(wait)), then for O(wait).
    type: int
    default: 60
attributes:
  check_mode:
    description: Returns the plan C(dct plan) would print, with the actions as RV(actions); nothing is touched
      (no file, no cgroup, no state; not even the apply lock), nothing is probed and O(wait) does not wait.
    support: full
  diff_mode:
    description: Field-level before/after of each container an action changes, in the normalized spec form.
    support: full
  platform:
    description: Linux targets.
    support: full
    platforms: posix
author:
  - declarative-ct developers (!UNKNOWN)
seealso:
  - module: declarative_ct.dct.container
  - module: declarative_ct.dct.info
'''

EXAMPLES = r'''
- name: Ship the specs
  ansible.builtin.copy:
    src: specs/
    dest: /etc/dct/specs/
    mode: "0644"

- name: Converge them, removing the containers of deleted specs
  declarative_ct.dct.apply:
    paths: [/etc/dct/specs]
    prune: true
  register: applied

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ applied.actions | map(attribute='cause') | list }}"

- name: Converge and wait until the containers run and their health checks pass (at most 2 minutes)
  declarative_ct.dct.apply:
    paths: [/etc/dct/specs]
    wait: true
    wait_timeout: 120

- name: What would change (nothing is touched)
  declarative_ct.dct.apply:
    paths: [/etc/dct/specs/web.yaml, /etc/dct/specs/db.yaml]
  check_mode: true
  diff: true
'''

RETURN = r'''
actions:
  description:
    - The actions taken, in the order they ran; in check mode, the actions that would run. Empty when every
      container already matched (then RV(ignore:changed) is false). Keys as in M(declarative_ct.dct.container);
      in C(cause), a changed value is shown as C(old → new) (the arrow is U+2192).
  returned: always
  type: list
  elements: dict
  sample:
    - {container: web, class: live, cause: "resources.memory 64Mi -> 128Mi", steps: [set],
       resources: {memory: 134217728}, result: ok}
    - {container: old, class: prune, cause: no longer in specs, steps: [stop, destroy], resources: {}, result: ok}
containers:
  description:
    - Each container the specs name, and each pruned one, after the task (in check mode, as it is now), by name;
      see M(declarative_ct.dct.info) for the keys. A removed one has C(exists) false.
  returned: when the specs are valid
  type: dict
  sample:
    web: {name: web, exists: true, status: running, pid: 12345, managed: true, source: /etc/dct/specs/web.yaml}
    old: {name: old, exists: false, status: absent}
plan:
  description: The plan as C(dct plan --json) gives it (actions, notes, errors, fingerprint).
  returned: when the specs are valid
  type: dict
wait:
  description:
    - What O(wait) found, once every container acted on was ready or O(wait_timeout) ran out. C(ready) is
      true when all were. By name, each container's C(ready), C(status) (created, running, paused, stopped,
      absent), C(health) (C(starting), C(healthy), C(unhealthy); null without a health check), C(detail)
      (what was seen, or C(not ready within ...) then the last status) and C(last_output) (the last probe's
      exit code and output).
  returned: when O(wait) is true, not in check mode
  type: dict
  sample:
    ready: false
    timeout: 60
    containers:
      web: {name: web, ready: true, status: running, health: healthy, detail: healthy, last_output: "exit 0: HTTP 200 OK"}
      db: {name: db, ready: false, status: running, health: unhealthy,
           detail: "unhealthy; last probe exit 1: connection refused", last_output: "exit 1: connection refused"}
errors:
  description: Every error of the spec files, each as C(file:line:col:) then the field and the reason.
  returned: when a spec is invalid
  type: list
  elements: str
  sample: ["/etc/dct/specs/web.yaml:4:11: resources.memory: 'lots' is not a size (give bytes, 64Mi, ...)"]
'''

import os  # noqa: E402 - after the documentation, as Ansible modules do

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.declarative_ct.dct.plugins.module_utils import dct  # noqa: E402


def main():
    argument_spec = dict(
        paths=dict(type="list", elements="path", required=True),
        prune=dict(type="bool", default=False),
        parallel=dict(type="int", default=0),
    )
    argument_spec.update(dct.ROOT_OPTION)
    argument_spec.update(dct.WAIT_OPTIONS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    dct.require_dct(module)
    paths = module.params["paths"]
    if not paths:
        module.fail_json(msg="paths: give at least one spec file or directory", actions=[])
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        module.fail_json(msg="paths: %s: give absolute paths on the target" % ", ".join(relative), actions=[])
    if module.params["parallel"] < 0:
        module.fail_json(msg="parallel: must be 0 (the number of CPUs) or more, got %d" % module.params["parallel"],
                         actions=[])

    from declarative_ct.reconcile.plan import scope_of
    from declarative_ct.spec.load import SpecErrors, load_paths

    try:
        docs = load_paths(paths)
    except SpecErrors as err:
        lines = [str(e) for e in err.errors]
        module.fail_json(msg="invalid specs (nothing was changed): " + "; ".join(lines), errors=lines, actions=[])
    wait, wait_timeout = dct.wait_options(module)
    rt = dct.runtime(module, module.params["root"])
    done = dct.converge(module, rt, lambda observed: docs, prune=module.params["prune"], scope=scope_of(paths),
                        parallel=module.params["parallel"], wait=wait, wait_timeout=wait_timeout)
    plan = done.plan
    by_name = {d.spec.name: d for d in docs}
    names = list(by_name) + [a.container for a in plan.actions if a.container not in by_name]
    result = {
        "changed": dct.changed(done),
        "actions": dct.action_results(done),
        "containers": {name: dct.facts(rt, name, desired=by_name[name].spec if name in by_name else None)
                       for name in names},
        "plan": plan.to_dict(),
    }
    if done.ready is not None:
        result["wait"] = dct.wait_result(done, wait_timeout)
    if module._diff:
        result["diff"] = [dct.diff(a.container, a, done.observed.get(a.container), by_name.get(a.container))
                          for a in plan.actions]
    for note in dct.warnings(done, by_name):  # exited and kept down by their policy, restart pending
        module.warn(note)
    problems = dct.failures(done) + dct.wait_failures(done)
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
