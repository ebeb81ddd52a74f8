"""The terminal UI of declarative-ct (``dct tui``), built on Textual.

Layout: :mod:`tui.model` (pure: readings → rates, history, drift, snapshots; no Textual),
:mod:`tui.backend` (the real backend over a state root, a fake one for tests),
:mod:`tui.collector` (one pass per tick, in a worker thread), :mod:`tui.app` (the App),
:mod:`tui.screens` (containers, container, events, modals), ``app.tcss`` (layout).
:func:`tui.cli.cmd_tui` is what ``dct tui`` runs.
"""
