"""units.parse_size / format_size: the sizes users type (bytes, IEC, docker's 64m) and their errors."""

from __future__ import annotations

import pytest

from declarative_ct.units import UNLIMITED, format_size, parse_size

MI = 1 << 20
GI = 1 << 30


@pytest.mark.parametrize("value, expected", [
    (0, 0),
    (1048576, MI),
    ("1048576", MI),
    (" 4096 ", 4096),
    ("64B", 64),
    ("64b", 64),
    ("64Mi", 64 * MI),
    ("64MiB", 64 * MI),
    ("64mib", 64 * MI),
    ("64MB", 64 * MI),  # binary, as docker/runc read -m 64MB
    ("64m", 64 * MI),
    ("64 Mi", 64 * MI),
    ("512k", 512 << 10),
    ("512Ki", 512 << 10),
    ("1g", GI),
    ("1G", GI),
    ("2Ti", 2 << 40),
    ("1p", 1 << 50),
    ("1.5Gi", 1610612736),
    ("0.5k", 512),
    ("1.25Ki", 1280),
    ("2.0", 2),
])
def test_parse_size_accepts(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [-1, "-1", "unlimited", "Unlimited", "max", "MAX", " max "])
def test_parse_size_unlimited(value):
    assert parse_size(value) == UNLIMITED == -1


@pytest.mark.parametrize("value, fragment", [
    (-2, "-2 is negative"),
    (-1048576, "is negative"),
    ("-2", "'-2' is not a size"),
    ("-64Mi", "'-64Mi' is not a size"),
    ("abc", "'abc' is not a size"),
    ("", "'' is not a size"),
    ("64i", "'64i' is not a size"),
    ("64x", "'64x' is not a size"),
    ("Mi", "'Mi' is not a size"),
    ("64Mi64", "'64Mi64' is not a size"),
    ("1e3", "'1e3' is not a size"),
    ("1.5", "'1.5' is not a whole number of bytes"),
    ("0.1k", "'0.1k' is not a whole number of bytes"),
    ("1.3Ti", "is not a whole number of bytes"),
    (True, "True is not a size"),
    (False, "False is not a size"),
    (1.5, "1.5 is not a size"),
    (None, "None is not a size"),
    ([64], "[64] is not a size"),
])
def test_parse_size_errors_name_the_field(value, fragment):
    with pytest.raises(ValueError) as info:
        parse_size(value, "resources.memory")
    message = str(info.value)
    assert message.startswith("resources.memory: ")
    assert fragment in message


def test_parse_size_default_field_name():
    with pytest.raises(ValueError, match=r"^size: 'lots' is not a size"):
        parse_size("lots")


def test_parse_size_negative_int_message_points_to_unlimited():
    with pytest.raises(ValueError) as info:
        parse_size(-5, "memory_swap")
    assert str(info.value) == 'memory_swap: -5 is negative (use -1 or "unlimited" for no limit)'


@pytest.mark.parametrize("value, expected", [
    (None, "unset"),
    (-1, "unlimited"),
    (0, "0"),
    (1, "1"),
    (1023, "1023"),
    (1024, "1Ki"),
    (1536, "1536"),  # not an exact 1Ki multiple: stays in bytes, never "1.5Ki"
    (64 * MI, "64Mi"),
    (64 * MI + 4096, "65540Ki"),
    (1610612736, "1536Mi"),
    (GI, "1Gi"),
    (3 << 40, "3Ti"),
    (1 << 50, "1Pi"),
    (1 << 60, "1024Pi"),
])
def test_format_size(value, expected):
    assert format_size(value) == expected


@pytest.mark.parametrize("value", [0, 1, 4096, 1536, 64 * MI, 64 * MI + 4096, GI, 1 << 50, -1])
def test_format_then_parse_round_trips(value):
    assert parse_size(format_size(value)) == value
