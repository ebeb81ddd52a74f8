"""The reconciler's vocabulary: an action's kind, its steps, and the result of running it.

The values are the strings of ``dct plan --json`` (``class``, ``steps``), of the journal's lines
(``class``, ``steps``, ``result``) and of the Ansible module's results: they are the wire format.
Plain string constants in classes, as :class:`declarative_ct.runtime.sync.Kind`, rather than
``enum.StrEnum``: three enums cost ~0.6 ms to define, on every ``dct plan``; a constant compares,
hashes, prints and serialises as its string, so every output stays byte-identical.
"""

from __future__ import annotations


class ActionKind:
    """What an action does to one container (``Action.kind``; ``class`` in JSON)."""

    CREATE = "create"  # no such container yet
    RECREATE = "recreate"  # a field only a new container can take changed (or a recreate was asked for)
    LIVE = "live"  # resources, written in place (Container.set, libcontainer Set)
    LIFECYCLE = "lifecycle"  # start, pause, resume, stop, or a restart under the restart policy
    SIGNAL = "signal"  # a reload_on file changed: reload_signal to init
    DESTROY = "destroy"  # state: absent
    PRUNE = "prune"  # ours, from the given paths, no longer declared (with --prune)

    ALL = (CREATE, RECREATE, LIVE, LIFECYCLE, SIGNAL, DESTROY, PRUNE)
    TEARDOWN = (DESTROY, PRUNE)  # run first, dependents before what they depend on
    FRESH_START = (DESTROY, PRUNE, CREATE, RECREATE)  # after these no restart count remains


class Step:
    """One runtime operation of an action (``Action.steps``), in the order the action runs them."""

    STOP = "stop"  # the spec's stop signal, stop_timeout, then SIGKILL (Container.stop)
    DESTROY = "destroy"  # stop if needed, then Container.destroy
    CREATE = "create"  # Runtime.create and start the init (Container.start/run)
    START = "start"  # release a created container's init (Container.exec)
    PAUSE = "pause"
    RESUME = "resume"
    SIGNAL = "signal"  # reload_signal to init
    SET = "set"  # write Action.resources (Container.set)

    ALL = (STOP, DESTROY, CREATE, START, PAUSE, RESUME, SIGNAL, SET)


class Result:
    """What became of an action (``Outcome.result``)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # a container it depends on failed

    ALL = (OK, FAILED, SKIPPED)
