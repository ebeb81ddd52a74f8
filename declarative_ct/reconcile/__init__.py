"""The reconciler: observe the containers of a state root, plan against the specs, apply the plan.

Knows the runtime and the spec models; nothing of YAML files, Textual or Ansible.
"""
