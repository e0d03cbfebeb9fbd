"""Durations, rates and sizes as the config file writes them."""

from __future__ import annotations

import pytest

from syncd.units import Rate, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), (0.25, 0.25), ("500ms", 0.5), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("7d", 604800.0), ("3", 3.0)],
)
def test_duration_parses(text: str | float, seconds: float) -> None:
    """A duration is a number of seconds or a number with ms/s/m/h/d."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1", "fast", "1.2.3s", True, -3])
def test_duration_rejects(text: object) -> None:
    """Anything else is refused with a message that shows the expected form."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10/s", Rate(10, 1)), ("180/min", Rate(180, 60)), ("36000/h", Rate(36000, 3600)), ("5/10s", Rate(5, 10))],
)
def test_rate_parses(text: str, rate: Rate) -> None:
    """A rate is a count per unit (s, min, h), optionally per several units."""
    assert parse_rate(text) == rate
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize("text", ["10", "0/s", "ten/s", "10/fortnight"])
def test_rate_rejects(text: str) -> None:
    """Malformed or zero rates are refused."""
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [(0, 0), (4096, 4096), ("4096", 4096), ("500MB", 500 * 10**6), ("2 GB", 2 * 10**9), ("1.5GiB", 3 * 2**29)],
)
def test_sizes_are_bytes_or_decimal_or_binary_multiples(text: int | str, size: int) -> None:
    """A size is a number of bytes, or a number with KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB (1024)."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "5 parsecs", "-1MB", -1, True, "1.5.2GB"])
def test_anything_else_is_not_a_size(text: int | str) -> None:
    """Anything but a non-negative number with a known unit is refused."""
    with pytest.raises(ValueError, match="size"):
        parse_size(text)
