"""``DctApp``: the Textual application (``dct tui``).

The app owns the backend, the collector and the event timeline; screens render snapshots.
One timer (the refresh interval) starts one collector worker thread per tick, unless the
previous one is still running; the worker hands back an immutable :class:`~tui.model.Snapshot`
through ``call_from_thread``. Actions (pause, signal, destroy, apply) run in thread workers too;
a failure is a notification and an event, never a crash. ``readonly`` refuses every action.
"""

# Size: one Textual App class: the timer, the collector worker, the action workers and the palette share its state.

from __future__ import annotations

import signal as _signal
import time
from collections.abc import Callable, Iterable
from functools import partial

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.worker import get_current_worker

from declarative_ct.reconcile.kinds import Result

from .backend import Backend, Outcome, PlanChanged
from .collector import MIN_INTERVAL, Collector
from .desired import PlanView
from .model import Snapshot, ops
from .timeline import Event, EventLog


class ActionsProvider(Provider):
    """Every action of the TUI in the command palette (``ctrl+p``): per container and global."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        return app.palette_commands(self.screen) if isinstance(app, DctApp) else []

    async def discover(self) -> Hits:
        for title, help_, callback in self._commands():
            yield DiscoveryHit(Text(title), callback, text=title, help=help_)  # Text: never markup

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_)


class DctApp(App):
    """The TUI.

    Args:
        backend: where containers are read and acted on (:class:`~tui.backend.RealBackend` or a fake).
        interval: seconds between refreshes (default 1; :data:`~tui.collector.MIN_INTERVAL` at least).
        readonly: refuse every action that changes something (``dct tui --readonly``).
        collector: a ready :class:`~tui.collector.Collector` (tests pass one with fixed clocks).
    """

    TITLE = "dct tui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("a", "plan", "Plan/apply"),
        Binding("e", "events", "Events"),
    ]

    def __init__(self, backend: Backend, interval: float = 1.0, readonly: bool = False,
                 collector: Collector | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.interval = max(MIN_INTERVAL, interval)
        self.readonly = readonly or backend.readonly
        self.collector = collector or Collector(backend)
        self.events = EventLog()
        self.snapshot: Snapshot | None = None
        self.ticks = 0
        self._collecting = False
        self._last_errors: tuple[str, ...] = ()
        self._busy: set[str] = set()  # containers with an action in flight
        self._streamed: dict[tuple[str, str], float] = {}  # apply outcomes shown, by (container, text)
        self._applying = False
        self._spec_errors: tuple[str, ...] = ()
        self._notices: tuple[str, ...] = ()
        if self.readonly:
            self.sub_title = "read-only"

    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """``App.notify`` with markup off by default: messages carry container names, errors and
        spec text, where ``[`` is text (a markup error would end the app)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- refresh -------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .screens.containers import ContainersScreen

        self.push_screen(ContainersScreen())
        self.set_interval(self.interval, self.refresh_now)
        self.refresh_now()

    def refresh_now(self) -> None:
        """Start a collector pass unless one is running (a slow pass delays the next, never piles up)."""
        if self._collecting:
            return
        self._collecting = True
        self._collect()

    @work(thread=True, group="collect", exit_on_error=False)
    def _collect(self) -> None:
        try:
            snap = self.collector.collect()
        except Exception as err:  # noqa: BLE001 - reported, the next tick tries again
            self._collecting = False
            self._post(self.notify, f"refresh failed: {err}", severity="error")
            return
        if get_current_worker().is_cancelled:
            self._collecting = False
            return
        self._post(self._show_snapshot, snap)

    def _post(self, callback: Callable, *args, **kwargs) -> None:
        """``call_from_thread`` that is quiet once the app is gone (a worker finishing at quit)."""
        try:
            self.call_from_thread(callback, *args, **kwargs)
        except RuntimeError:
            pass

    def _show_snapshot(self, snap: Snapshot) -> None:
        self._collecting = False
        self.snapshot = snap
        self.ticks += 1
        if snap.events:
            # The journal repeats what an apply from here already streamed: shown once.
            now = time.time()
            self._streamed = {k: t for k, t in self._streamed.items() if now - t < 300}
            self.events.extend(e for e in snap.events
                               if not (e.source == "journal" and (e.container, e.text) in self._streamed))
        if snap.errors and snap.errors != self._last_errors:
            self.notify("\n".join(snap.errors), title="refresh", severity="warning")
        self._last_errors = snap.errors
        spec_errors = snap.desired.errors if snap.desired is not None else ()
        if spec_errors and spec_errors != self._spec_errors:  # the last good specs stay in force meanwhile
            self.notify("\n".join(spec_errors[:5]), title="spec errors (the last valid specs are used)",
                        severity="error", timeout=10)
        self._spec_errors = spec_errors
        if snap.notices and snap.notices != self._notices:
            self.notify("\n".join(snap.notices), severity="warning", timeout=10)
        self._notices = snap.notices
        for screen in reversed(self.screen_stack):
            show = getattr(screen, "show_snapshot", None)
            if show is not None:
                show(snap)
                break

    def events_changed(self) -> None:
        """Refresh the event views on screen now (an action or an apply step just ended)."""
        for screen in reversed(self.screen_stack):
            show = getattr(screen, "show_events", None)
            if show is not None:
                show()
                break

    def add_event(self, container: str, source: str, text: str, level: str = "info") -> None:
        self.events.add(Event(time.time(), container, source, text, level))
        self.events_changed()

    # -- selection helpers -------------------------------------------------------------
    def status_of(self, container_id: str) -> str | None:
        """The status in the last snapshot (None: unknown or absent)."""
        row = self.snapshot.by_id.get(container_id) if self.snapshot else None
        return row.status if row is not None and row.reading is not None else None

    def refuse_readonly(self, what: str) -> bool:
        """True (and a notification) when the app is read-only."""
        if self.readonly:
            self.notify(f"read-only: {what} refused", severity="warning")
            return True
        return False

    # -- actions -------------------------------------------------------------------------
    def pause_or_resume(self, ids: Iterable[str]) -> None:
        """Pause each running/created container, resume each paused one; others are skipped (noted)."""
        if self.refuse_readonly("pause/resume"):
            return
        for cid in ids:
            status = self.status_of(cid)
            if "pause" in ops(status):
                self._run_action("pause", cid, self.backend.pause, cid)
            elif "resume" in ops(status):
                self._run_action("resume", cid, self.backend.resume, cid)
            else:
                self.notify(f"{cid}: cannot pause or resume a container that is {status or 'absent'}",
                            severity="warning")

    def ask_signal(self, ids: list[str], pid: int | None = None, create_time: float | None = None,
                   label: str = "") -> None:
        """The signal picker, then the signal to each container's init (or to process ``pid``)."""
        if self.refuse_readonly("signal"):
            return
        targets = [cid for cid in ids if "signal" in ops(self.status_of(cid))]
        if not targets:
            self.notify("no running container selected", severity="warning")
            return
        from .screens.modals import SignalScreen

        what = label or (f"process {pid} of {targets[0]}" if pid is not None else ", ".join(targets))

        def chosen(sig: int | None) -> None:
            if sig is None:
                return
            name = _signal.Signals(sig).name
            for cid in targets:
                self._run_action(f"{name} to {'pid %d' % pid if pid is not None else 'init'}", cid,
                                 self.backend.signal, cid, sig, pid, create_time)

        self.push_screen(SignalScreen(what), chosen)

    def ask_destroy(self, ids: list[str]) -> None:
        """A confirm dialog, then kill and destroy each container."""
        if self.refuse_readonly("destroy"):
            return
        targets = [cid for cid in ids if self.status_of(cid) is not None]
        if not targets:
            self.notify("no container selected", severity="warning")
            return
        from .screens.modals import ConfirmScreen

        names = ", ".join(targets[:8]) + (f" and {len(targets) - 8} more" if len(targets) > 8 else "")
        body = (f"Destroy {names}?\n\nEvery process is killed (SIGKILL) and the container removed "
                "(its state directory, cgroup and logs). This cannot be undone.")

        def confirmed(ok: bool | None) -> None:
            if ok:
                for cid in targets:
                    self._run_action("destroy", cid, self.backend.destroy, cid)

        self.push_screen(ConfirmScreen("Destroy", body, confirm="Destroy"), confirmed)

    def open_shell(self, cid: str | None) -> None:
        """"Shell into this container": suspend the app, run a shell in ``cid`` on this terminal
        (``Backend.shell``, as ``dct exec -t ID sh``), resume. Needs a running container; refused
        when read-only (a shell changes what it likes)."""
        if self.refuse_readonly("shell"):
            return
        if cid is None or self.status_of(cid) != "running":
            self.notify(f"{cid or 'no container'}: a shell needs a running container", severity="warning")
            return
        from textual.app import SuspendNotSupported

        outcome: tuple[int | None, str | None] = (None, "not run")
        try:
            with self.suspend():
                # Caught in here: an exception out of the block would skip the app's resume.
                try:
                    outcome = (self.backend.shell(cid), None)
                except Exception as err:  # noqa: BLE001 - a notification, never a crash
                    outcome = (None, str(err) or type(err).__name__)
        except SuspendNotSupported:
            outcome = (None, "this terminal cannot be handed over (no suspend here)")
        code, error = outcome
        if error is None:
            self.add_event(cid, "action", f"shell: exited with {code}")
        else:
            self.add_event(cid, "action", f"shell: failed: {error}", "error")
            self.notify(f"{cid}: shell failed: {error}", severity="error", timeout=8)
        self.refresh_now()

    def _run_action(self, what: str, cid: str, fn: Callable, *args) -> None:
        if cid in self._busy:
            self.notify(f"{cid}: an action is still running; {what} not sent", severity="warning")
            return
        self._busy.add(cid)
        self._action_worker(what, cid, fn, args)

    @work(thread=True, group="actions", exit_on_error=False)
    def _action_worker(self, what: str, cid: str, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - every failure is a notification, never a crash
            self._post(self._action_done, what, cid, str(err) or type(err).__name__)
        else:
            self._post(self._action_done, what, cid, None)

    def _action_done(self, what: str, cid: str, error: str | None) -> None:
        self._busy.discard(cid)
        if error is None:
            self.add_event(cid, "action", f"{what}: ok")
        else:
            self.add_event(cid, "action", f"{what}: failed: {error}", "error")
            self.notify(f"{cid}: {what} failed: {error}", severity="error", timeout=8)
        self.collector.refresh_desired()
        self.refresh_now()

    # -- plan / apply ----------------------------------------------------------------------
    def action_plan(self) -> None:
        """Plan (in a worker) and show it grouped by class; apply only on confirmation."""
        if self.refuse_readonly("plan/apply"):
            return
        from .screens.modals import PlanScreen

        def confirmed(plan: PlanView | None) -> None:
            if plan is not None and plan.actions:
                self.start_apply(plan)

        self.push_screen(PlanScreen(self.backend), confirmed)

    def start_apply(self, plan: PlanView) -> None:
        """Apply ``plan`` in a worker; each action's outcome streams into the events view."""
        if self.refuse_readonly("apply"):
            return
        if self._applying:
            self.notify("an apply is still running", severity="warning")
            return
        self._applying = True
        self.add_event("", "apply", f"applying {len(plan.actions)} action(s)…")
        self.action_events()
        self._apply_worker(plan)

    @work(thread=True, group="apply", exit_on_error=False)
    def _apply_worker(self, plan: PlanView) -> None:
        def progress(o: Outcome) -> None:
            self._post(self._apply_step, o)

        try:
            outcomes = self.backend.apply(plan, progress)
        except PlanChanged as err:
            self._post(self._apply_done, None, str(err))
            return
        except Exception as err:  # noqa: BLE001
            self._post(self._apply_done, None, f"apply failed: {err}")
            return
        self._post(self._apply_done, outcomes, None)

    def _apply_step(self, o: Outcome) -> None:
        text = f"{o.kind} ({o.cause}): {o.result}" + (f": {o.error}" if o.error else "")
        level = "error" if o.result == Result.FAILED else "warning" if o.result == Result.SKIPPED else "info"
        self._streamed[(o.container, text)] = time.time()
        self.add_event(o.container, "apply", text, level)
        if o.result == Result.FAILED:
            self.notify(f"{o.container}: {o.kind} failed: {o.error}", severity="error", timeout=8)

    def _apply_done(self, outcomes: list[Outcome] | None, error: str | None) -> None:
        self._applying = False
        if error is not None:
            self.add_event("", "apply", error, "error")
            self.notify(error, title="apply", severity="error", timeout=8)
        else:
            failed = sum(o.result == Result.FAILED for o in outcomes)
            skipped = sum(o.result == Result.SKIPPED for o in outcomes)
            text = f"apply: {len(outcomes) - failed - skipped} done, {failed} failed, {skipped} skipped"
            self.add_event("", "apply", text, "error" if failed else "info")
            self.notify(text, severity="error" if failed else "information")
        self.collector.refresh_desired()
        self.refresh_now()

    # -- screens -------------------------------------------------------------------------
    def action_events(self) -> None:
        from .screens.events import EventsScreen

        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen())

    def action_help(self) -> None:
        from .screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(readonly=self.readonly, specs_given=self.backend.specs_given))

    def open_container(self, cid: str, tab: str = "processes") -> None:
        from .screens.container import ContainerScreen

        self.push_screen(ContainerScreen(cid, tab))

    # -- command palette -------------------------------------------------------------------
    def palette_commands(self, screen: Screen | None = None) -> list[tuple[str, str, Callable[[], object]]]:
        """``(title, help, callback)`` of every action, for the command palette opened on ``screen``."""
        out: list[tuple[str, str, Callable[[], object]]] = []
        rows = self.snapshot.rows if self.snapshot else ()
        out.append(("Plan and apply…", "show the plan for the specs; apply on confirmation", self.action_plan))
        out.append(("Events", "the event timeline (status changes, journal, actions)", self.action_events))
        out.append(("Help", "keys and what each column means", self.action_help))
        screen = screen or self.screen
        if hasattr(screen, "set_filter"):
            out.append(("Filter containers…", "a regex on name, status, drift and health (! inverts)", screen.action_filter))
        for key, label in getattr(screen, "SORT_CHOICES", ()):
            out.append((f"Sort by {label}", "sort the containers table (again: reverse)",
                        partial(screen.sort_by, key)))
        for row in rows:
            cid = row.id
            if row.reading is None:
                continue
            out.append((f"Open {cid}", "processes, stats, logs, spec, events", partial(self.open_container, cid)))
            out.append((f"Logs of {cid}", "stdout/stderr, follow, filter", partial(self.open_container, cid, "logs")))
            if "pause" in ops(row.status):
                out.append((f"Pause {cid}", "freeze every process", partial(self.pause_or_resume, [cid])))
            if "resume" in ops(row.status):
                out.append((f"Resume {cid}", "thaw a paused container", partial(self.pause_or_resume, [cid])))
            if row.status == "running":
                out.append((f"Shell into {cid}", "sh on a terminal in the container (exit returns here)",
                            partial(self.open_shell, cid)))
            if "signal" in ops(row.status):
                out.append((f"Signal {cid}…", "send a signal to its init", partial(self.ask_signal, [cid])))
            out.append((f"Destroy {cid}…", "kill and remove (asks first)", partial(self.ask_destroy, [cid])))
        return out

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh now", "collect the containers' state now", self.refresh_now)
