"""OCI ``linux.resources`` → :class:`~declarative_ct.configs.Resources` (runc's ``specconv.CreateCgroupConfig``),
for a bundle's config.json and for ``dct update -r`` alike."""

from __future__ import annotations

from ...configs import DeviceRule, Resources, ThrottleDevice, default_device_rules
from ...errors import ConfigInvalid
from .fields import get_obj, get_uint, is_int, present, reject_unknown


_OCI_RESOURCES = {
    "memory": {"limit": "memory", "reservation": "memory_reservation", "swap": "memory_swap"},
    "cpu": {"shares": "cpu_shares", "quota": "cpu_quota", "period": "cpu_period", "cpus": "cpuset_cpus",
            "mems": "cpuset_mems"},
    "pids": {"limit": "pids_limit"},
    "blockIO": {"weight": "blkio_weight"},
}
_OCI_THROTTLES = {"throttleReadBpsDevice": "blkio_throttle_read_bps_device",
                  "throttleWriteBpsDevice": "blkio_throttle_write_bps_device",
                  "throttleReadIOPSDevice": "blkio_throttle_read_iops_device",
                  "throttleWriteIOPSDevice": "blkio_throttle_write_iops_device"}
OCI_RESOURCE_NAMES = {attr: f"{group}.{key}" for group, names in _OCI_RESOURCES.items() for key, attr in names.items()}
OCI_RESOURCE_NAMES.update({attr: f"blockIO.{key}" for key, attr in _OCI_THROTTLES.items()})
"""``Resources`` field → its name in an OCI ``linux.resources`` object (``memory_swap`` → ``memory.swap``)."""


def resources_from_oci(res: object, where: str = "linux.resources", into: Resources | None = None,
                       devices: bool = True, validate: bool = True) -> Resources:
    """An OCI ``linux.resources`` object (parsed JSON) as :class:`Resources` (runc's ``CreateCgroupConfig``).

    ``memory.{limit,reservation,swap}`` (bytes), ``cpu.{shares,quota,period,cpus,mems}``,
    ``pids.limit``, ``blockIO.{weight,throttle*Device}`` and ``devices``; the fields it does not
    hold are left as they are in ``into`` (None in a new :class:`Resources`). As runc 1.1 does,
    0 and an empty cpu list mean "not set"; a negative ``pids.limit`` means unlimited (-1). ``runc update -r``
    takes the same object (``dct update -r``: ``devices=False``, ``validate=False``, as the
    update is checked against the container's current limits).

    Args:
        where: the prefix of the field names in error messages (``linux.resources.memory.limit``).
        into: the Resources to fill (e.g. the config's); a new one when None.
        devices: False refuses a ``devices`` list (it cannot change after create).
        validate: run :meth:`Resources.validate` at the end (its field names get ``where``).

    Raises:
        ConfigInvalid: naming the field: a wrong type, an unknown non-empty field, a bad value.
    """
    if not isinstance(res, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    resources = into if into is not None else Resources()
    known = (("devices",) if devices else ()) + tuple(_OCI_RESOURCES)
    for key, why in (("hugepageLimits", "no hugetlb controller in dct's cgroup drivers yet"),
                     ("network", "no net_cls/net_prio support in dct's cgroup drivers yet")):
        if present(res.get(key)):  # runc 1.1 fails too where the controller is not mounted
            raise ConfigInvalid(f"{where}.{key}: not supported ({why})")
    known += ("hugepageLimits", "network")
    if not devices and present(res.get("devices")):
        raise ConfigInvalid(f"{where}.devices: the device rules are fixed at create and cannot be updated")
    reject_unknown(res, known, f"{where}.")
    for group, names in _OCI_RESOURCES.items():
        section = get_obj(res, group, f"{where}.{group}")
        known = tuple(names) + (tuple(_OCI_THROTTLES) if group == "blockIO" else ())
        reject_unknown(section, known, f"{where}.{group}.")
        for key, attr in names.items():
            value = section.get(key)
            field_name = f"{where}.{group}.{key}"
            if value is None:
                continue
            if attr.startswith("cpuset_"):
                if not isinstance(value, str):
                    raise ConfigInvalid(f"{field_name}: must be a string such as \"0-1\"")
                if not value:
                    continue  # runc: an empty list is "not set"
            elif not is_int(value):
                raise ConfigInvalid(f"{field_name}: {value!r} must be an integer")
            elif attr == "pids_limit" and value < 0:
                value = -1  # unlimited
            elif value == 0:
                continue  # runc 1.1 treats 0 as "not set" (a pids limit of 0 too: never lift one by accident)
            setattr(resources, attr, value)
        if group == "blockIO":
            for key, attr in _OCI_THROTTLES.items():
                if section.get(key) is not None:
                    setattr(resources, attr, _throttles(section[key], f"{where}.blockIO.{key}"))
    if devices and "devices" in res:
        raw = res["devices"]
        if not isinstance(raw, list):
            raise ConfigInvalid(f"{where}.devices: must be a list")
        rules = [_device_rule(d, f"{where}.devices[{i}]") for i, d in enumerate(raw)]
        # runc's specconv appends AllowedDevices after the user's rules; ours minus its deny-all head.
        resources.devices = rules + default_device_rules()[1:]
    if validate:
        try:
            resources.validate()
        except ConfigInvalid as err:  # resources.memory_swap is <where>.memory.swap here
            raise err.renamed(oci_names(where)) from None
    return resources


def oci_names(where: str = "linux.resources"):  # noqa: ANN201 - Callable[[str], str]
    """A renamer (see :meth:`~declarative_ct.errors.ConfigInvalid.renamed`) naming each ``resources.<field>``
    of the runtime as the OCI key: ``resources.memory_swap`` → ``<where>.memory.swap``; other names kept."""
    def name(field: str) -> str:
        attr = field.removeprefix("resources.")
        return f"{where}.{OCI_RESOURCE_NAMES[attr]}" if attr != field and attr in OCI_RESOURCE_NAMES else field
    return name


def _throttles(raw: object, where: str) -> list[ThrottleDevice]:
    if not isinstance(raw, list):
        raise ConfigInvalid(f"{where}: must be a list of {{major, minor, rate}}")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigInvalid(f"{where}[{i}]: must be an object")
        reject_unknown(entry, ("major", "minor", "rate"), f"{where}[{i}].")
        values = [get_uint(entry, k, f"{where}[{i}].{k}", None) for k in ("major", "minor", "rate")]
        if None in values:
            raise ConfigInvalid(f"{where}[{i}]: major, minor and rate are required")
        out.append(ThrottleDevice(*values))
    return out


def _device_rule(raw: object, where: str) -> DeviceRule:
    if not isinstance(raw, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    reject_unknown(raw, ("allow", "type", "major", "minor", "access"), f"{where}.")
    allow = raw.get("allow")
    if not isinstance(allow, bool):
        raise ConfigInvalid(f"{where}.allow: required, true or false")
    dev_type = raw.get("type", "a")
    if dev_type not in ("a", "b", "c"):
        raise ConfigInvalid(f"{where}.type: {dev_type!r} must be a, b or c")
    access = raw.get("access", "rwm")
    if not isinstance(access, str) or not access or set(access) - set("rwm"):
        raise ConfigInvalid(f"{where}.access: {access!r} must be made of r, w and m")
    major, minor = raw.get("major", -1), raw.get("minor", -1)
    for name, value in (("major", major), ("minor", minor)):
        if not is_int(value) or value < -1:
            raise ConfigInvalid(f"{where}.{name}: {value!r} must be a non-negative integer")
    return DeviceRule(dev_type, major, minor, access, allow)


# -- small field helpers -----------------------------------------------------------------------
