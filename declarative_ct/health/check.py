"""A container's health check: one probe (exec, HTTP GET or TCP connect) and its timing.

:class:`HealthCheck` is read from a normalized spec's ``health`` (the spec's ``health:`` field
with its defaults filled in, durations in seconds)::

    {"exec": ["test", "-f", "/tmp/ready"] | null,          # exactly one of exec, http, tcp
     "http": {"port": 8080, "path": "/healthz", "expect_status": [200] | null} | null,
     "tcp": {"port": 5432} | null,
     "interval": 2.0, "timeout": 1.0, "retries": 3, "start_period": 5.0,
     "on_unhealthy": "restart" | "none"}

Stdlib only, pure: the prober, ``dct status``, the TUI and the Ansible modules all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import format_duration

KINDS = ("exec", "http", "tcp")
ON_UNHEALTHY = ("restart", "none")


@dataclass(frozen=True)
class HealthCheck:
    """One probe of one container, as the spec declares it.

    ``kind`` in :data:`KINDS`; ``command`` (exec: argv, run inside the container as ``exec`` runs
    a process, with the spec's user, env and cwd); ``port`` (http, tcp: connected from inside the
    container's network namespace, on 127.0.0.1); ``path`` (http: the request target);
    ``expect_status`` (http: the statuses that pass; empty: any of 200–399, the kubelet's rule);
    ``interval``, ``timeout``, ``start_period``: seconds; ``retries``: consecutive failures
    (after ``start_period``) that make the container unhealthy; ``on_unhealthy`` in
    :data:`ON_UNHEALTHY`. Mirrors compose's ``healthcheck`` and the kubelet's probe fields.
    """

    kind: str
    command: tuple[str, ...] = ()
    port: int = 0
    path: str = "/"
    expect_status: tuple[int, ...] = ()
    interval: float = 10.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0
    on_unhealthy: str = "none"

    @classmethod
    def from_normalized(cls, health: dict | None) -> HealthCheck | None:
        """The check of a normalized spec's ``health`` (the module doc's shape); None for None.

        Raises:
            ValueError: not exactly one of exec, http and tcp (the spec model refuses it first).
        """
        if not health:
            return None
        kinds = [k for k in KINDS if health.get(k)]
        if len(kinds) != 1:
            raise ValueError(f"health: exactly one of exec, http and tcp is needed, not {kinds or 'none'}")
        kind = kinds[0]
        timing = {k: health[k] for k in ("interval", "timeout", "retries", "start_period", "on_unhealthy") if k in health}
        if kind == "exec":
            return cls(kind, command=tuple(health["exec"]), **timing)
        probe = health[kind]
        extra = {"path": probe.get("path") or "/", "expect_status": tuple(probe.get("expect_status") or ())} \
            if kind == "http" else {}
        return cls(kind, port=int(probe["port"]), **extra, **timing)

    @classmethod
    def read(cls, health: object) -> HealthCheck | None:
        """:meth:`from_normalized` that never raises: None for no check or an unreadable one (a
        spec the model refuses first; a label or record written by another version). Readers of
        labels and records (the displays, the planner, apply's and the supervisor's targets) use it."""
        try:
            return cls.from_normalized(health)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def to_normalized(self) -> dict:
        """The normalized ``health`` this check reads from (:meth:`from_normalized`'s inverse): the
        shape in the module doc, kept in the health record so a reader knows the check it was made by."""
        out: dict = {"exec": None, "http": None, "tcp": None, "interval": self.interval, "timeout": self.timeout,
                     "retries": self.retries, "start_period": self.start_period, "on_unhealthy": self.on_unhealthy}
        if self.kind == "exec":
            out["exec"] = list(self.command)
        elif self.kind == "http":
            out["http"] = {"port": self.port, "path": self.path, "expect_status": list(self.expect_status) or None}
        else:
            out["tcp"] = {"port": self.port}
        return out

    def passes(self, status: int) -> bool:
        """Whether an HTTP response's ``status`` passes (``expect_status``, else 200–399)."""
        return status in self.expect_status if self.expect_status else 200 <= status < 400

    def describe(self) -> str:
        """The probe in a few words: ``exec test -f /tmp/ready``, ``http GET :8080/healthz``, ``tcp :5432``."""
        if self.kind == "exec":
            return "exec " + " ".join(self.command)
        if self.kind == "http":
            expect = f" → {'/'.join(map(str, self.expect_status))}" if self.expect_status else ""
            return f"http GET :{self.port}{self.path}{expect}"
        return f"tcp :{self.port}"

    def timing(self) -> str:
        """``every 2s, timeout 1s, 3 retries, start period 5s``."""
        text = f"every {format_duration(self.interval)}, timeout {format_duration(self.timeout)}, " \
               f"{self.retries} {'retry' if self.retries == 1 else 'retries'}"
        return text + (f", start period {format_duration(self.start_period)}" if self.start_period else "")
