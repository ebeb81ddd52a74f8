"""The ``dct`` command line.

:mod:`.main` dispatches, :mod:`.parser` parses (and writes runc's log). runc's verbs by
family: :mod:`.create` (create, run), :mod:`.lifecycle` (start, kill, delete, pause, resume),
:mod:`.exec_process` (exec), :mod:`.observe` (state, list, ps, logs, events), :mod:`.update`,
:mod:`.network`, :mod:`.bundle` (spec), :mod:`.features` (features, --version), sharing
:mod:`.common` and :mod:`.foreground` (terminal, forwarded signals, the wait; :mod:`.tty` the
terminal's proxy). The desired-state verbs are :mod:`.desired`.
"""
