"""The spec's ``health:`` field (one probe and its timing) and ``depends_on``'s conditions.

::

    health:
      exec: [test, -f, /tmp/ready]          # or  http: {port: 8080, path: /healthz, expect_status: [200, 204]}
      interval: 2s                          # or  tcp: {port: 5432}
      timeout: 1s
      retries: 3
      start_period: 5s
      on_unhealthy: restart                 # or none (the default)

    depends_on: {db: healthy, migrate: completed, cache: started}   # or a list: [db, cache] (all started)

The supervisor runs the probe (``declarative_ct.health``, which reads :meth:`HealthSpec.normalized`
through ``HealthCheck.from_normalized``); compose's ``healthcheck`` and the kubelet's probes are
the models. Strict like the rest of the spec: errors name the field, at its place in the file.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from .model_base import NAME_PATTERN, NAME_RULE, FieldError, Strict, check_argv, duration

CONDITIONS = ("started", "healthy", "completed")
PROBES = ("exec", "http", "tcp")
ON_UNHEALTHY = ("none", "restart")
MIN_STATUS, MAX_STATUS = 100, 599

Port = Annotated[int, Field(ge=1, le=65535, description="a TCP port inside the container (1 to 65535)")]
Status = Annotated[int, Field(ge=MIN_STATUS, le=MAX_STATUS)]


def _statuses(value: object) -> object:
    """``200`` → ``[200]``; a list as it is (its items are checked as ``Status``); anything else refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if value is None or isinstance(value, list):
        return value
    from .messages import describe_value  # the loader's words for a value (an error path only)

    raise ValueError(f"expected a status code (e.g. 200) or a list of them, got {describe_value(value)}")


_STATUS_SCHEMA = {"type": "integer", "minimum": MIN_STATUS, "maximum": MAX_STATUS}
StatusList = Annotated[list[Status], Field(min_length=1), BeforeValidator(_statuses), WithJsonSchema({
    "anyOf": [_STATUS_SCHEMA, {"type": "array", "items": _STATUS_SCHEMA, "minItems": 1}],
    "description": "the HTTP status that passes, or a list of them (unset: any of 200 to 399)"})]


class HttpProbeSpec(Strict):
    """An HTTP GET of ``path`` on ``127.0.0.1:port`` inside the container's network namespace; it
    passes on a status of ``expect_status`` (unset: 200 to 399, the kubelet's rule)."""

    port: Port
    path: str = Field("/", description="the request target: starts with /, printable ASCII without spaces")
    expect_status: StatusList | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with / (a path such as /healthz)")
        for char in value:
            if char.isspace() or unicodedata.category(char) == "Cc" or not char.isascii():
                from urllib.parse import quote  # an error path only

                if char == " ":
                    what = "a space"
                elif char.isspace() or not char.isprintable():
                    what = f"U+{ord(char):04X}"
                else:
                    what = f"the non-ASCII {char!r}"
                raise ValueError(f"{value!r} holds {what}: percent-encode it ({quote(char)})")
        return value


class TcpProbeSpec(Strict):
    """A TCP connect to ``127.0.0.1:port`` inside the container's network namespace."""

    port: Port


def _argv(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(f'expected a list (the program and its arguments), got the string "{value}": '
                         f'write [sh, -c, "{value}"] for a shell command')
    return value


Argv = Annotated[list[str], Field(min_length=1), BeforeValidator(_argv)]
Interval = duration(0.5, 3600.0)
Timeout = duration(0.1, 3600.0)
StartPeriod = duration(0.0, 3600.0)


class HealthSpec(Strict):
    """One probe and its timing: exactly one of ``exec`` (argv run inside the container as ``dct exec``
    runs it, with the spec's user, env and cwd; exit 0 passes), ``http`` and ``tcp``; every
    ``interval`` (seconds) the probe runs, and fails if it takes longer than ``timeout``; ``retries``
    failures in a row make the container unhealthy, not counting those within ``start_period`` of its
    start; ``on_unhealthy: restart`` restarts it then (with the restart policy's backoff), ``none``
    only reports it. Mirrors compose's ``healthcheck`` and the kubelet's probes."""

    exec: Argv | None = Field(None, description="the program and its arguments, run inside the container")
    http: HttpProbeSpec | None = None
    tcp: TcpProbeSpec | None = None
    interval: Interval = 10.0
    timeout: Timeout = 5.0
    retries: int = Field(3, ge=1, le=100, description="failures in a row that make the container unhealthy")
    start_period: StartPeriod = 0.0
    on_unhealthy: Literal["none", "restart"] = Field("none", description=(
        "restart: an unhealthy container is restarted (with the restart policy's backoff); none: reported only"))

    @field_validator("exec")
    @classmethod
    def _exec(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_argv(value)

    @model_validator(mode="after")
    def _one_probe(self) -> "HealthSpec":
        given = [name for name in PROBES if getattr(self, name) is not None]
        if len(given) != 1:
            which = "none is given" if not given else f"not {' and '.join(given)}"
            raise ValueError(f"give exactly one probe: exec, http or tcp ({which})")
        return self

    def normalized(self) -> dict[str, object]:
        """The shape ``declarative_ct.health.check`` documents: every probe key (the unused ones
        None), http's ``expect_status`` sorted (or None), durations in float seconds."""
        data = self.model_dump(mode="json")
        if self.http is not None and self.http.expect_status is not None:
            data["http"]["expect_status"] = sorted(set(self.http.expect_status))
        for name in ("interval", "timeout", "start_period"):
            data[name] = float(data[name])
        return data


def _depends_on(value: object) -> object:
    """The list form (``[db, cache]``) as the mapping form, each name ``started`` (the first place of a
    name repeated); a mapping as it is (pydantic checks its names and conditions)."""
    if isinstance(value, dict):
        return value
    from .messages import describe_value  # the loader's words for a value (an error path only)

    if not isinstance(value, list):
        raise ValueError("expected a list of names or a mapping of name: condition (started, healthy or "
                         f"completed), got {describe_value(value)}")
    out: dict[str, str] = {}
    for i, name in enumerate(value):
        if not isinstance(name, str):
            raise FieldError((i,), f"expected a string (a container's name), got {describe_value(name)}")
        if not re.match(NAME_PATTERN, name):
            raise FieldError((i,), NAME_RULE)
        out.setdefault(name, "started")
    return out


_NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN}
DependsOn = Annotated[dict[Annotated[str, Field(pattern=NAME_PATTERN)], Literal["started", "healthy", "completed"]],
                      BeforeValidator(_depends_on), WithJsonSchema({
    "anyOf": [{"type": "array", "items": _NAME_SCHEMA},
              {"type": "object", "propertyNames": _NAME_SCHEMA,
               "additionalProperties": {"enum": list(CONDITIONS)}}],
    "description": "containers this one starts after: a list of names (each started), or a mapping of name to "
                   "condition: started (it runs), healthy (its health probe passes), completed (it exited 0)"})]
"""``depends_on``: read into the mapping form, name → ``started | healthy | completed`` (the names in
the order given)."""
