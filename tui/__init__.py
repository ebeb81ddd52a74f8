"""The terminal UI of declarative-ct (``dct tui``), built on Textual.

Layout. Pure (no Textual): :mod:`tui.model` (readings → rates, rows, snapshots) with one module
per job beside it: :mod:`tui.columns`, :mod:`tui.numbers` (rates, formats), :mod:`tui.history`,
:mod:`tui.timeline` (events), :mod:`tui.desired` (drift view, spec diff, plan grouping),
:mod:`tui.processes`, :mod:`tui.filters`, :mod:`tui.logs` and :mod:`tui.stats_tab`;
:mod:`tui.backend` (the interface; the real backend over a state root in :mod:`tui.backend.real`,
one module per job; the tests' fake is ``tests/tui/fake_backend.py``); :mod:`tui.collector` (one
pass per tick, in a worker thread). Textual: :mod:`tui.app` (the App), :mod:`tui.screens`
(containers, container, events, modals), :mod:`tui.widgets` (``LiveTable``), :mod:`tui.charts`,
``app.tcss`` (layout). :func:`tui.cli.cmd_tui` is what ``dct tui`` runs.
"""
