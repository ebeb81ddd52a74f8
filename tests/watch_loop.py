"""``Loop``: one ``dct watch`` loop run in a thread by the integration tests, with what it printed."""

from __future__ import annotations

import threading

from declarative_ct.reconcile.watch import watch


class Loop:
    """One watch loop in a thread; ``out``/``err``: the lines it printed; ``result``: its exit code once ended."""

    def __init__(self, paths, root, options):
        self.stop = threading.Event()
        self.out: list[str] = []
        self.err: list[str] = []
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(
            watch(paths, root, options, self.stop, out=self.out.append, err=self.err.append)), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)

    def saw(self, text: str, stream: str = "out") -> bool:
        return any(text in line for line in list(getattr(self, stream)))
