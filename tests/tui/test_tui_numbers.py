"""The TUI's numbers (tui/numbers.py): counter deltas (wraps, resets) and the number formats."""

from __future__ import annotations

from tui.numbers import counter_delta, fmt_bytes, fmt_duration, fmt_pct, fmt_used_limit, rate


def test_formats():
    assert fmt_bytes(0) == "0B" and fmt_bytes(512) == "512B" and fmt_bytes(1536) == "1.5K"
    assert fmt_bytes(12.3 * (1 << 20)) == "12.3M" and fmt_bytes(123 << 20) == "123M" and fmt_bytes(1 << 30) == "1.0G"
    assert fmt_bytes(None) == "-"
    assert fmt_pct(3.21) == "3.2%" and fmt_pct(42.4) == "42%" and fmt_pct(None) == "-"
    assert [fmt_duration(s) for s in (5, 59, 60, 3599, 3600, 3660, 86400 + 7200)] == \
        ["5s", "59s", "1m", "59m", "1h00m", "1h01m", "1d2h"]
    assert fmt_used_limit(8 << 20, 64 << 20) == "8.0M/64.0M" and fmt_used_limit(8 << 20, None) == "8.0M/-"
    assert fmt_used_limit(None, 5) == "-"


def test_counter_delta_growth_reset_and_32_bit_wrap():
    assert counter_delta(100, 250) == 150
    assert counter_delta(None, 5) is None and counter_delta(5, None) is None
    assert counter_delta(1000, 10) is None  # went down: a reset (new run, new interface), no rate
    assert counter_delta((1 << 32) - 100, 50) == 150  # a 32-bit counter wrapped once
    assert counter_delta(1 << 40, 5) is None  # a 64-bit counter going down is a reset, not a wrap
    assert rate(0, 100, 2.0) == 50.0
    assert rate(0, 100, 0.0) is None and rate(200, 100, 1.0) is None
