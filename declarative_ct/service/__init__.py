"""``dct watch`` as a system service: the supervisor of a state root.

- :mod:`.supervisor`: one supervisor per state root (``<root>/#supervisor.lock``) and its record
  (``#supervisor.json``: pid, spec paths, started, last pass);
- :mod:`.notify`: systemd's notifications (``READY``, ``RELOADING``, ``STOPPING``, ``WATCHDOG``,
  ``STATUS``; nothing without ``$NOTIFY_SOCKET``);
- :mod:`.hooks`: the watch loop's hooks and signals of a supervisor (SIGTERM, SIGHUP);
- :mod:`.unit`: the shipped systemd unit (``dct.service``, package data) and ``dct service
  install|uninstall|status``.

Between the CLI and the reconciler; no Textual, no Ansible.
"""
