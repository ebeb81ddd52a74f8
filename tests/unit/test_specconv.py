"""Unit tests for runtime.specconv: OCI config.json -> Config/Process (pure logic, no root)."""

from __future__ import annotations

import json
import resource

import pytest

from declarative_ct.configs import (DEFAULT_MASK_PATHS, DEFAULT_READONLY_PATHS, Capabilities, Device, DeviceRule,
                                    Hook, ThrottleDevice, default_device_rules)
from declarative_ct.configs.mountflags import (EXT_COPYUP, MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NOSUID,
                                               MOUNT_ATTR_RDONLY, MS_BIND, MS_PRIVATE, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                                               MS_RDONLY, MS_REC, MS_SHARED, MS_SLAVE, MS_STRICTATIME)
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime.specconv import example_spec, load_bundle


def write_spec(bundle, spec) -> None:
    (bundle / "config.json").write_text(json.dumps(spec))


def load(bundle, spec):
    write_spec(bundle, spec)
    return load_bundle(str(bundle))


def rejects(bundle, spec, *fragments: str) -> str:
    """Assert load_bundle refuses ``spec`` with a message containing every fragment; return it."""
    write_spec(bundle, spec)
    with pytest.raises(ConfigInvalid) as info:
        load_bundle(str(bundle))
    msg = str(info.value)
    assert msg.startswith(str(bundle / "config.json") + ": ")
    for fragment in fragments:
        assert fragment in msg
    return msg


def mount(cfg, dest):
    return next(m for m in cfg.mounts if m.destination == dest)


# -- example spec ----------------------------------------------------------------------------------

def test_example_spec_is_fresh_each_call():
    a = example_spec()
    a["process"]["args"].append("x")
    a["linux"]["maskedPaths"].clear()
    b = example_spec()
    assert b["process"]["args"] == ["sh"]
    assert b["linux"]["maskedPaths"] == DEFAULT_MASK_PATHS
    assert b["process"]["terminal"] is False
    assert b["hostname"] == "dct"


def test_example_spec_round_trips(tmp_path):
    cfg, proc = load(tmp_path, example_spec())
    assert cfg.rootfs == str(tmp_path / "rootfs")
    assert cfg.readonlyfs is True
    assert cfg.hostname == "dct"
    assert cfg.version == "1.2.0"
    assert cfg.labels == [f"bundle={tmp_path}"]
    assert [n.type for n in cfg.namespaces] == ["NEWPID", "NEWNET", "NEWIPC", "NEWUTS", "NEWNS", "NEWCGROUP"]
    assert all(n.path == "" for n in cfg.namespaces)
    assert cfg.mask_paths == DEFAULT_MASK_PATHS
    assert cfg.readonly_paths == DEFAULT_READONLY_PATHS
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert cfg.capabilities == Capabilities(Bounding=caps, Effective=caps, Permitted=caps, Inheritable=[], Ambient=[])
    assert [(r.type, r.hard, r.soft) for r in cfg.rlimits] == [(resource.RLIMIT_NOFILE, 1024, 1024)]
    assert cfg.no_new_privileges is True
    # deny all, then our allow-list (without a second deny-all)
    assert cfg.cgroups.resources.devices == default_device_rules()

    assert proc.args == ["sh"]
    assert proc.cwd == "/" and proc.uid == 0 and proc.gid == 0
    assert "TERM=xterm" in proc.env and proc.env[0].startswith("PATH=")
    assert proc.no_new_privileges is True
    assert proc.capabilities == cfg.capabilities and proc.capabilities is not cfg.capabilities
    assert proc.rlimits == cfg.rlimits


def test_example_spec_mounts(tmp_path):
    cfg, _ = load(tmp_path, example_spec())
    assert [m.destination for m in cfg.mounts] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    sys_mount = mount(cfg, "/sys")
    assert sys_mount.device == "sysfs"
    assert sys_mount.flags == MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY
    devpts = mount(cfg, "/dev/pts")
    assert devpts.flags == MS_NOSUID | MS_NOEXEC
    assert "newinstance" in devpts.data.split(",")
    assert devpts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    dev = mount(cfg, "/dev")
    assert dev.device == "tmpfs" and dev.flags == MS_NOSUID | MS_STRICTATIME and dev.data == "mode=755,size=65536k"
    assert mount(cfg, "/dev/shm").source == "shm"
    assert all(m.propagation_flags == [] for m in cfg.mounts)


# -- conversions -----------------------------------------------------------------------------------

def test_relative_root_and_bind_source_resolve_against_bundle(tmp_path):
    spec = example_spec()
    spec["root"] = {"path": "./sub/../rootfs"}
    spec["mounts"] = [
        {"destination": "/data", "type": "bind", "source": "data", "options": ["ro"]},
        {"destination": "/abs", "source": "/srv/x", "options": ["rbind", "rslave"]},
    ]
    cfg, _ = load(tmp_path, spec)
    assert cfg.rootfs == str(tmp_path / "rootfs")
    assert cfg.readonlyfs is False
    data = mount(cfg, "/data")
    assert data.device == "bind" and data.source == str(tmp_path / "data")
    assert data.flags == MS_BIND | MS_RDONLY  # "bind" type alone: not recursive
    abs_mount = mount(cfg, "/abs")
    assert abs_mount.device == "bind" and abs_mount.source == "/srv/x"
    assert abs_mount.flags == MS_BIND | MS_REC
    assert abs_mount.propagation_flags == [MS_SLAVE | MS_REC]


def test_options_clear_flags_and_unknown_type_passes_through(tmp_path):
    spec = example_spec()
    spec["mounts"] = [{"destination": "/x", "type": "fancyfs", "source": "s",
                       "options": ["ro", "nosuid", "rw", "suid", "foo=bar"]}]
    cfg, _ = load(tmp_path, spec)
    assert cfg.mounts[0].device == "fancyfs"
    assert cfg.mounts[0].flags == 0
    assert cfg.mounts[0].data == "foo=bar"


def test_annotations_become_labels_with_bundle_first(tmp_path):
    spec = example_spec()
    spec["annotations"] = {"org.example.a": "1", "b": "x=y"}
    cfg, _ = load(tmp_path, spec)
    assert cfg.labels == [f"bundle={tmp_path}", "org.example.a=1", "b=x=y"]
    assert cfg.label("bundle") == str(tmp_path)


def test_process_user_env_and_oom(tmp_path):
    spec = example_spec()
    spec["process"].update(user={"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 0o27},
                           cwd="/home/u", oomScoreAdj=-500, noNewPrivileges=False, consoleSize={"height": 1})
    cfg, proc = load(tmp_path, spec)
    assert (proc.uid, proc.gid, proc.additional_groups, proc.umask) == (1000, 100, [5, 6], 0o27)
    assert proc.cwd == "/home/u"
    assert cfg.oom_score_adj == -500
    assert cfg.no_new_privileges is False and proc.no_new_privileges is False


def test_missing_capabilities_grant_nothing_and_empty_linux_lists(tmp_path):
    spec = example_spec()
    del spec["process"]["capabilities"]
    del spec["linux"]["maskedPaths"]
    del spec["linux"]["readonlyPaths"]
    cfg, _ = load(tmp_path, spec)
    assert cfg.capabilities == Capabilities(Bounding=[], Effective=[], Permitted=[], Inheritable=[], Ambient=[])
    assert cfg.mask_paths == [] and cfg.readonly_paths == []


def test_device_rules_come_first_then_allow_list(tmp_path):
    spec = example_spec()
    spec["linux"]["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},
    ]}
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    spec["linux"]["cgroupsPath"] = "/whatever"
    spec["linux"]["rootfsPropagation"] = "rprivate"
    cfg, _ = load(tmp_path, spec)
    devices = cfg.cgroups.resources.devices
    assert devices[:2] == [DeviceRule("a", -1, -1, "rwm", False), DeviceRule("c", 10, 200, "rw", True)]
    assert devices[2:] == default_device_rules()[1:]
    assert cfg.sysctl == {"net.ipv4.ip_forward": "1"}
    assert cfg.cgroups.path == "/whatever"
    assert cfg.root_propagation == MS_PRIVATE | MS_REC


def test_namespace_path_is_joined(tmp_path):
    spec = example_spec()
    spec["linux"]["namespaces"] = [{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]
    cfg, _ = load(tmp_path, spec)
    assert cfg.namespace("NEWNET").path == "/proc/self/ns/net"
    assert cfg.namespace("NEWPID") is None


# -- rejections ------------------------------------------------------------------------------------

def test_missing_config_json(tmp_path):
    with pytest.raises(ConfigInvalid) as info:
        load_bundle(str(tmp_path))
    assert str(info.value) == f"{tmp_path}/config.json: no such file (run 'dct spec' in the bundle to write one)"


def test_bad_json_names_line_and_column(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.2.0",\n  "process": }\n')
    with pytest.raises(ConfigInvalid) as info:
        load_bundle(str(tmp_path))
    assert "line 3, column 14" in str(info.value)
    assert str(tmp_path / "config.json") in str(info.value)


@pytest.mark.parametrize("value", [[], ["a", "b"], "x", 3])
def test_top_level_must_be_object(tmp_path, value):
    rejects(tmp_path, value, "top-level value must be a JSON object")


def edit(path: str, value):
    """A spec with the dotted ``path`` set to ``value``."""
    spec = example_spec()
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return spec


def _MAP(container_id: int, host_id: int, size: int) -> dict[str, int]:  # noqa: N802 - reads as a literal
    return {"containerID": container_id, "hostID": host_id, "size": size}


@pytest.mark.parametrize("path,value,fragments", [
    ("process.terminal", "yes", ["process.terminal"]),
    ("process.consoleSize", {"height": -1, "width": 80}, ["process.consoleSize.height"]),
    ("process.consoleSize", {"height": 24, "width": 70000}, ["process.consoleSize.width"]),
    ("process.consoleSize", {"rows": 24}, ["process.consoleSize.rows"]),
    ("process.args", "sh", ["process.args: must be a non-empty list of strings"]),
    ("process.args", [], ["process.args: must be a non-empty list of strings"]),
    ("process.args", ["sh", 1], ["process.args: must be a non-empty list of strings"]),
    ("process.env", ["NOEQUALS"], ["process.env", "NOEQUALS"]),
    ("process.cwd", "relative", ["process.cwd"]),
    ("process.capabilities.bounding", ["CAP_KILL", "CAP_FLY"], ["process.capabilities.bounding", "CAP_FLY"]),
    ("process.rlimits", [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}],
     ["process.rlimits[0].type", "RLIMIT_BOGUS"]),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}], ["process.rlimits[0]", "soft"]),
    ("process.apparmorProfile", "docker-default", ["process.apparmorProfile: not supported"]),
    ("process.selinuxLabel", "system_u:r:x", ["process.selinuxLabel: not supported"]),
    ("process.user.uid", -1, ["process.user.uid"]),
    ("ociVersion", "2.0.0", ["ociVersion"]),
    ("root.path", "", ["root.path"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_FOO"}, ['linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"']),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"},
                                                                      {"names": ["b"], "action": "SCMP_ACT_FOO"}]},
     ['linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO"']),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     ['linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_Z80"']),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     ["linux.seccomp.flags[0]", "SECCOMP_FILTER_FLAG_NOPE"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     ["linux.seccomp.syscalls[0].args[0].index", "[0, 5]"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     ["linux.seccomp.syscalls[0].args[0].value", "unsigned 64-bit"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]},
     ['linux.seccomp.syscalls[0].args[0].op: unknown operator "EQ"']),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]},
     ["linux.seccomp.syscalls[0].errnoRet", "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000},
     ["linux.seccomp.defaultErrnoRet", "[0, 4095]"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"},
     ["linux.seccomp.listenerPath: not supported"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_NOTIFY"}]},
     ["linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported"]),
    ("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "SCMP_ACT_LOG"}]},
     ["linux.seccomp.syscalls[0].names"]),
    ("linux.seccomp", ["SCMP_ACT_ALLOW"], ["linux.seccomp: must be an object"]),
    ("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}],
     ["linux.uidMappings: given without a user namespace"]),
    ("linux.uidMappings", {"containerID": 0}, ["linux.uidMappings: must be a list"]),
    ("linux.uidMappings", [{"containerID": 0, "hostID": -1, "size": 1}], ["linux.uidMappings[0].hostID", "-1"]),
    ("linux.uidMappings", [{"containerID": 0, "size": 1}], ["linux.uidMappings[0]", "hostID", "required"]),
    ("linux.uidMappings", [{"containerID": 0, "hostID": 0, "size": 1, "x": 1}], ["linux.uidMappings[0].x"]),
    ("linux.resources.memory", {"limit": 1000000}, ["linux.resources.memory", "below 1Mi"]),
    ("linux.resources.memory", {"limit": 64 << 20, "swap": 32 << 20}, ["memory_swap", "below memory"]),
    ("linux.resources.memory", {"limit": "64m"}, ["linux.resources.memory.limit", "integer"]),
    ("linux.resources.memory", {"kernel": 1 << 20}, ["linux.resources.memory.kernel: not supported"]),
    ("linux.resources.cpu", {"shares": 1}, ["linux.resources.cpu.shares: 1", "[2, 262144]"]),
    ("linux.resources.cpu", {"cpus": "1-0"}, ["linux.resources.cpu.cpus", "reversed"]),
    ("linux.resources.cpu", {"quota": 500}, ["linux.resources.cpu.quota", "1000"]),
    ("linux.resources.cpu", {"realtimeRuntime": 100}, ["linux.resources.cpu.realtimeRuntime: not supported"]),
    ("linux.resources.hugepageLimits", [{"pageSize": "2MB", "limit": 1}], ["linux.resources.hugepageLimits"]),
    ("linux.resources.blockIO", {"weight": 5}, ["linux.resources.blockIO.weight", "[10, 1000]"]),
    ("linux.resources.blockIO", {"throttleReadBpsDevice": [{"major": 8}]}, ["throttleReadBpsDevice[0]", "required"]),
    ("linux.resources.devices", [{"allow": True, "type": "x"}], ["linux.resources.devices[0].type"]),
    ("linux.namespaces", [{"type": "user"}, {"type": "mount"}], ["linux.uidMappings", "needs mappings"]),
    ("linux", {"namespaces": [{"type": "user"}, {"type": "mount"}], "uidMappings": [_MAP(1, 1000, 10)],
               "gidMappings": [_MAP(0, 1000, 10)]}, ["linux.uidMappings", "root (id 0) must be mapped"]),
    ("linux", {"namespaces": [{"type": "user"}, {"type": "mount"}], "uidMappings": [_MAP(0, 1000, 10)],
               "gidMappings": [_MAP(0, 1000, 10), _MAP(10, 1005, 10)]},
     ["linux.gidMappings[0] and [1]", "host ids overlap"]),
    ("linux", {"namespaces": [{"type": "user"}, {"type": "mount"}], "uidMappings": [_MAP(0, 1000, 0)],
               "gidMappings": [_MAP(0, 1000, 1)]}, ["linux.uidMappings[0]", "size 0"]),
    ("linux", {"namespaces": [{"type": "user"}, {"type": "mount"}], "gidMappings": [_MAP(0, 1000, 1)],
               "uidMappings": [_MAP(i, 1000 + i, 1) for i in range(341)]}, ["linux.uidMappings", "at most 340"]),
    ("linux.namespaces", [{"type": "time"}], ["linux.namespaces[0].type", "time"]),
    ("linux.namespaces", [{"type": "network", "path": "/proc/self/ns/user"}],
     ["linux.namespaces[0].path", "is a user namespace, not a network one"]),
    ("linux.namespaces", [{"type": "mount"}, {"type": "network", "path": "/etc/hostname"}],
     ["linux.namespaces[1].path: /etc/hostname is not a namespace file"]),
    ("linux.namespaces", [{"type": "network", "path": "/no/such/ns"}],
     ["linux.namespaces[0].path: /no/such/ns cannot be opened: No such file or directory"]),
    ("linux.uidMappings", [_MAP(0, 1000, 1)], ['(add {"type": "user"} to linux.namespaces)']),
    ("linux.namespaces", [{"type": "pid"}, {"type": "pid"}], ["linux.namespaces[1].type", "twice"]),
    ("linux.namespaces", [{"type": "bogus"}], ["linux.namespaces[0].type", "bogus"]),
    ("linux.maskedPaths", ["proc/kcore"], ["linux.maskedPaths"]),
    ("mounts", [{"destination": "rel", "type": "tmpfs"}], ["mounts[0].destination"]),
    ("mounts", [{"destination": "/./", "type": "tmpfs", "source": "tmpfs"}], ["mounts[0].destination", "root"]),
    ("mounts", [{"destination": "/x", "source": "/s", "options": ["bind", "mode=755"]}],
     ["mounts[0].options", "no effect on a bind mount"]),
    ("annotations", {"k": 1}, ["annotations"]),
    ("linux.rootfsPropagation", "unbindable", ["linux.rootfsPropagation", "unbindable"]),
    ("mounts", [{"destination": "/x", "type": "bind", "source": "/s", "options": ["rbind", "idmap"]}],
     ["mounts[0].options", "idmap"]),
    ("mounts", [{"destination": "/x", "type": "bind", "source": "/s", "options": ["tmpcopyup"]}],
     ["mounts[0].options", "tmpcopyup needs a mount of type tmpfs"]),
    ("mounts", [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["memory"]}],
     ["mounts[0].options", "memory", "cgroup mount"]),
    ("hooks", {"prestart": [{"path": "true"}]}, ["hooks.prestart[0].path", "absolute"]),
    ("hooks", {"createRuntime": [{"path": "/bin/true", "timeout": 0}]}, ["hooks.createRuntime[0].timeout"]),
    ("hooks", {"poststop": [{"path": "/bin/true", "env": ["NOEQ"]}]}, ["hooks.poststop[0].env", "NOEQ"]),
    ("hooks", {"poststart": {"path": "/bin/true"}}, ["hooks.poststart: must be a list"]),
    ("hooks", {"poststart": [{"path": "/bin/true", "args": "x"}]}, ["hooks.poststart[0].args"]),
    ("linux.devices", [{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}], ["linux.devices[0].path"]),
    ("linux.devices", [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}], ["linux.devices[0].type"]),
    ("linux.devices", [{"path": "/dev/fuse", "type": "c", "minor": 229}], ["linux.devices[0]", "major and minor"]),
    ("linux.devices", [{"path": "/dev/fuse", "type": "c", "major": -1, "minor": 229}], ["linux.devices[0].major"]),
    ("linux.devices", [{"path": "/dev/fuse", "type": "c", "major": 1, "minor": 2, "uid": "0"}],
     ["linux.devices[0].uid"]),
    ("linux.mountLabel", "system_u:object_r:x:s0", ["linux.mountLabel: not supported"]),
    ("linux.resources.network", {"classID": 1}, ["linux.resources.network: not supported"]),
    ("linux.cgroupsPath", "a/../b", ["linux.cgroupsPath", "'.' or '..'"]),
    ("linux.cgroupsPath", "system.slice:dct:x", ["linux.cgroupsPath", "systemd"]),
])
def test_rejections_name_the_field(tmp_path, path, value, fragments):
    rejects(tmp_path, edit(path, value), *fragments)


def test_unknown_properties_are_ignored_at_every_level(tmp_path):
    """The runtime-spec: a runtime MUST ignore unknown properties (a newer client's extras)."""
    spec = example_spec()
    spec["vm"] = {"hypervisor": {"path": "/x"}}  # another platform's object
    spec["frobnicate"] = {"a": 1}
    spec["root"]["x-root"] = 1
    spec["process"]["x-future"] = [1]
    spec["process"]["user"]["x-user"] = "u"
    spec["process"]["capabilities"]["x-caps"] = ["CAP_SYS_ADMIN"]
    spec["process"]["rlimits"][0]["x-rl"] = 1
    spec["mounts"][0]["x-mount"] = True
    spec["linux"]["x-linux"] = {"a": 1}
    spec["linux"]["namespaces"][0]["x-ns"] = 1
    spec["linux"]["resources"]["x-res"] = 1
    spec["linux"]["resources"]["devices"][0]["x-dev"] = 1
    spec["linux"]["resources"]["memory"] = {"limit": 64 << 20, "x-mem": 1}
    spec["linux"]["resources"]["blockIO"] = {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1,
                                                                        "x-t": 1}]}
    spec["linux"]["seccomp"]["x-seccomp"] = 1
    spec["linux"]["seccomp"]["syscalls"][0]["x-call"] = 1
    cfg, process = load(tmp_path, spec)
    assert cfg.cgroups.resources.memory == 64 << 20 and process.args == ["sh"]


@pytest.mark.parametrize("path, value, field", [
    ("linux", {"intelRdt": {"closID": "x"}}, "linux.intelRdt"),  # runc 1.1 fails too without RDT
    ("linux.resources", {"rdma": {"mlx": {"hcaHandles": 1}}}, "linux.resources.rdma"),
    ("linux.resources", {"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ("linux.resources", {"blockIO": {"leafWeight": 10}}, "linux.resources.blockIO.leafWeight"),
    ("linux.seccomp", {"listenerMetadata": "m"}, "linux.seccomp.listenerMetadata"),
])
def test_known_fields_we_do_not_implement_stay_refused_by_name(tmp_path, path, value, field):
    spec = example_spec()
    target = spec
    for part in path.split("."):
        target = target[part]
    target.update(value)
    rejects(tmp_path, spec, f"{field}: not supported")


def test_resources_map_to_libcontainer_fields(tmp_path):
    spec = example_spec()
    spec["linux"]["resources"].update({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
    })
    res = load(tmp_path, spec)[0].cgroups.resources
    assert (res.memory, res.memory_reservation, res.memory_swap) == (64 << 20, 32 << 20, 128 << 20)
    assert (res.cpu_shares, res.cpu_quota, res.cpu_period, res.cpuset_cpus, res.cpuset_mems) == (
        512, 20000, 100000, "0", "0")
    assert res.pids_limit == -1
    assert res.blkio_weight == 500
    assert res.blkio_throttle_write_bps_device == [ThrottleDevice(8, 0, 1048576)]
    assert res.devices == default_device_rules()


def test_zero_and_empty_resources_mean_not_set(tmp_path):
    """runc 1.1: 0 is "not set" (a pids limit of 0 never lifts a limit by accident), "" cpus too."""
    spec = example_spec()
    spec["linux"]["resources"].update({"pids": {"limit": 0}, "cpu": {"cpus": "", "mems": "", "shares": 0},
                                       "memory": {"limit": 0}})
    res = load(tmp_path, spec)[0].cgroups.resources
    assert res.limits() == {}


def test_empty_unsupported_fields_are_accepted(tmp_path):
    spec = example_spec()
    spec["hooks"] = {"prestart": []}
    spec["linux"]["seccomp"] = None
    spec["linux"]["resources"]["memory"] = {}
    spec["process"]["apparmorProfile"] = ""
    load(tmp_path, spec)


def test_terminal_and_console_size(tmp_path):
    """process.terminal and consoleSize {height, width} reach the init Process as (rows, columns);
    a size with a 0 is no size (runc applies it only when both are set)."""
    spec = edit("process.terminal", True)
    spec["process"]["consoleSize"] = {"height": 40, "width": 132}
    _, process = load(tmp_path, spec)
    assert process.terminal is True
    assert process.console_size == (40, 132)
    spec["process"]["consoleSize"] = {"height": 0, "width": 132}
    _, process = load(tmp_path, spec)
    assert process.console_size is None


def test_hooks_parse_in_order(tmp_path):
    spec = example_spec()
    spec["hooks"] = {"createRuntime": [{"path": "/bin/a", "args": ["a", "1"], "env": ["X=1"], "timeout": 5},
                                       {"path": "/bin/b"}],
                     "poststop": [{"path": "/bin/c"}], "poststart": []}
    hooks = load(tmp_path, spec)[0].hooks
    assert hooks == {"createRuntime": [Hook("/bin/a", ["a", "1"], ["X=1"], 5), Hook("/bin/b")],
                     "poststop": [Hook("/bin/c")]}


def test_unknown_hook_point_is_ignored_with_a_warning(tmp_path, caplog):
    spec = example_spec()
    spec["hooks"] = {"preboot": [{"path": "/bin/true"}]}
    assert load(tmp_path, spec)[0].hooks == {}
    assert "hooks.preboot" in caplog.text


@pytest.mark.parametrize("path,value", [
    ("process.scheduler", {"policy": "SCHED_FIFO"}),
    ("process.ioPriority", {"class": "IOPRIO_CLASS_RT"}),
    ("process.execCPUAffinity", {"initial": "0"}),
    ("linux.memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0"}),
    ("linux.timeOffsets", {"monotonic": {"secs": 10}}),
])
def test_fields_runc_1_1_ignores_are_ignored_with_a_warning(tmp_path, caplog, path, value):
    load(tmp_path, edit(path, value))
    assert f"{path}: not supported; ignored" in caplog.text


def test_devices_parse(tmp_path):
    spec = example_spec()
    spec["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20666,
                                 "uid": 1, "gid": 2}, {"path": "/dev/pipe", "type": "p"},
                                {"path": "/dev//x/../sda", "type": "b", "major": 8, "minor": 0}]
    assert load(tmp_path, spec)[0].devices == [Device("/dev/fuse", "c", 10, 229, 0o666, 1, 2),
                                               Device("/dev/pipe", "p", 0, 0, 0o666, 0, 0),
                                               Device("/dev/sda", "b", 8, 0, 0o666, 0, 0)]


def test_mount_extensions_parse(tmp_path):
    spec = example_spec()
    spec["mounts"] += [{"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "rprivate"]},
                       {"destination": "/r", "type": "bind", "source": "/", "options": ["rbind", "rro", "rnosuid",
                                                                                         "rnoatime"]}]
    cfg = load(tmp_path, spec)[0]
    tmp, ro = cfg.mounts[-2], cfg.mounts[-1]
    assert tmp.extensions == EXT_COPYUP and tmp.data == "" and tmp.propagation_flags == [MS_PRIVATE | MS_REC]
    assert ro.rec_attr_set == MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
    assert ro.rec_attr_clr == MOUNT_ATTR__ATIME  # the whole atime field, as the kernel wants with a new mode
    assert ro.flags & MS_REC


def test_relative_cgroups_path_and_shared_propagation(tmp_path):
    spec = example_spec()
    spec["linux"]["cgroupsPath"] = "pods//x/"
    spec["linux"]["rootfsPropagation"] = "rshared"
    cfg = load(tmp_path, spec)[0]
    assert cfg.cgroups.path == "pods/x"
    assert cfg.root_propagation == MS_SHARED | MS_REC



def test_user_namespace_and_mappings_load_and_survive_state_json(tmp_path):
    from declarative_ct.configs import Config, IDMap
    from declarative_ct.runtime.userns import host_id, map_lines

    spec = example_spec()
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [_MAP(0, 100000, 65536)]
    spec["linux"]["gidMappings"] = [_MAP(0, 200000, 1000), _MAP(1000, 1000, 1)]
    write_spec(tmp_path, spec)
    cfg, _ = load_bundle(str(tmp_path))
    assert cfg.namespace("NEWUSER") is not None
    assert cfg.uid_mappings == [IDMap(0, 100000, 65536)]
    assert Config.from_dict(cfg.to_dict()).gid_mappings == [IDMap(0, 200000, 1000), IDMap(1000, 1000, 1)]
    assert map_lines(cfg.gid_mappings) == b"0 200000 1000\n1000 1000 1\n"
    assert (host_id(cfg.gid_mappings, 999), host_id(cfg.gid_mappings, 1000), host_id(cfg.gid_mappings, 1001)) == \
        (200999, 1000, None)
