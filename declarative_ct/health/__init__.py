"""Health: what a container's probe is (:mod:`.check`), what its results were (:mod:`.record`,
kept in the container's state directory), and the probes themselves, which the supervisor runs.

Beside ``spec`` in the layers: it knows the runtime (probes run in a container's namespaces) and
nothing of YAML; the reconciler turns a spec's ``health:`` into a :class:`.check.HealthCheck`.
"""
