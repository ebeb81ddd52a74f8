"""The last-applied spec (``dct.spec`` label): written and read by one module."""

from declarative_ct.configs import DEFAULT_ENV, Config
from declarative_ct.reconcile import last_applied

APPLIED = {"name": "web", "process": {"args": ["/bin/sh"], "env": {"A": "1"}, "cwd": "/srv", "user": "1000:100"},
           "logging": {"max_size": 1048576, "max_files": 2}}


def test_label_round_trip() -> None:
    key, _, value = last_applied.label(APPLIED).partition("=")
    assert key == last_applied.LABEL_SPEC == "dct.spec"
    assert value == ('{"logging":{"max_files":2,"max_size":1048576},"name":"web",'
                     '"process":{"args":["/bin/sh"],"cwd":"/srv","env":{"A":"1"},"user":"1000:100"}}')
    assert last_applied.read(Config(rootfs="/", labels=[last_applied.label(APPLIED)])) == {**APPLIED, "health": None}


def test_missing_or_unreadable_reads_as_empty() -> None:
    for text in (None, "", "{", "null", "[1]", '"x"'):
        assert last_applied.decode(text) == {}, text
    assert last_applied.read(Config(rootfs="/")) == {}
    assert last_applied.exec_process(Config(rootfs="/")) is None
    assert last_applied.exec_process(Config(rootfs="/", labels=["dct.spec={}"])) is None


def test_exec_process_takes_the_spec_user_env_and_cwd() -> None:
    proc = last_applied.exec_process(Config(rootfs="/", labels=[last_applied.label(APPLIED)]), args=["sh"])
    assert (proc.args, proc.cwd, proc.uid, proc.gid, proc.init) == (["sh"], "/srv", 1000, 100, False)
    assert proc.env == list(DEFAULT_ENV) + ["A=1"]
    init = last_applied.process(APPLIED)
    assert init.args == ["/bin/sh"] and init.init


def test_a_record_older_than_a_field_reads_with_its_default() -> None:
    """A container applied before ``logging`` existed reads as made with the default rotation (no recreate
    on upgrade); a record that has the field keeps its own, and "not made from a spec" stays ``{}``."""
    from declarative_ct.configs.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE

    old = {k: v for k, v in APPLIED.items() if k != "logging"}
    read = last_applied.read(Config(rootfs="/", labels=[last_applied.label(old)]))
    assert read == {**old, "logging": {"max_size": DEFAULT_MAX_SIZE, "max_files": DEFAULT_MAX_FILES}, "health": None}
    assert last_applied.decode(last_applied.label(APPLIED).partition("=")[2])["logging"] == APPLIED["logging"]
    assert last_applied.decode("{}") == {}


def test_a_record_older_than_health_and_conditions_reads_as_today() -> None:
    """Issue 16: a record made before ``health`` reads with ``health: None`` (no probe), one made before
    ``depends_on`` took conditions (a list) with each name ``started``; today's records stay as they are."""
    old = {**APPLIED, "depends_on": ["db", "cache"]}
    read = last_applied.decode(last_applied.label(old).partition("=")[2])
    assert read["health"] is None
    assert read["depends_on"] == {"cache": "started", "db": "started"}
    probe = {"exec": ["/bin/true"], "http": None, "tcp": None, "interval": 2.0, "timeout": 1.0, "retries": 3,
             "start_period": 0.0, "on_unhealthy": "none"}
    new = {**APPLIED, "depends_on": {"db": "healthy"}, "health": probe}
    assert last_applied.decode(last_applied.label(new).partition("=")[2]) == new
