# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)
"""Documentation fragment: what every declarative_ct.dct module takes and needs."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r'''
options:
  root:
    description:
      - The state root on the target (C(dct --root)), the directory holding one subdirectory per container.
      - Defaults to the E(DCT_ROOT) environment variable of the module, else C(/run/dct).
      - One root can hold several spec sets and containers made by other means. Roots keep separate
        states and cgroups (C(dct/<name>) under each hierarchy for C(/run/dct), C(dct-<hash of the root>/<name>)
        for any other root), so the same name can run in two roots of one machine. They are not wholly
        independent there all the same, as the host's network is shared; a bridge belongs to the root that
        made it (another root refuses its name), and a host port one root publishes is in use for the others.
    type: path
requirements:
  - declarative_ct (the declarative-ct Python package, Python 3.11 or later) installed for the Python
    interpreter that runs the module on the target (set C(ansible_python_interpreter) to it), as the
    docker modules need the docker SDK there.
  - Root on a Linux target (namespaces, cgroups v1 or v2).
notes:
  - The modules are a thin layer over declarative_ct; C(dct plan), C(dct apply) and C(dct status) on the
    target show the same plans and containers.
'''
