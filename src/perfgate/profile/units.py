"""pprof's units (its internal/measurement package): which unit a sample type is in, scaling, labels."""

from __future__ import annotations

# pprof's unit table (internal/measurement): canonical name, aliases, factor to the base unit.
_Unit = tuple[str, tuple[str, ...], float]
_BYTE_UNITS: tuple[_Unit, ...] = (
    ("B", ("b", "byte"), 1.0), ("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
    ("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)), ("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
    ("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)), ("PB", ("pb", "pbyte", "petabyte"), float(1 << 50)))
TIME_UNITS: tuple[_Unit, ...] = (
    ("ns", ("ns", "nanosecond"), 1.0), ("us", ("μs", "us", "microsecond"), 1e3),
    ("ms", ("ms", "millisecond"), 1e6), ("s", ("s", "sec", "second"), 1e9), ("hrs", ("hour", "hr"), 3.6e12))
_GCU_UNITS: tuple[_Unit, ...] = (
    ("n*GCU", ("nanogcu",), 1e-9), ("u*GCU", ("microgcu",), 1e-6), ("m*GCU", ("milligcu",), 1e-3),
    ("GCU", ("gcu",), 1.0), ("k*GCU", ("kilogcu",), 1e3), ("M*GCU", ("megagcu",), 1e6),
    ("G*GCU", ("gigagcu",), 1e9), ("T*GCU", ("teragcu",), 1e12), ("P*GCU", ("petagcu",), 1e15))
_UNIT_TYPES: tuple[tuple[tuple[_Unit, ...], _Unit], ...] = (
    (_BYTE_UNITS, _BYTE_UNITS[0]), (TIME_UNITS, ("s", (), 1e9)), (_GCU_UNITS, ("GCU", (), 1.0)))
_UNSCALED = ("count", "sample", "unit", "minimum", "auto")


def sniff_unit(units: tuple[_Unit, ...], unit: str) -> _Unit | None:
    unit = unit.lower()
    if len(unit) > 2:
        unit = unit.removesuffix("s")
    return next((candidate for candidate in units if unit in candidate[1]), None)


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """pprof's measurement.Scale: the value in to_unit ("minimum"/"auto" pick a readable one)."""
    if value < 0:
        scaled, unit = scale(-value, from_unit, to_unit)
        return -scaled, unit
    for units, default in _UNIT_TYPES:
        source = sniff_unit(units, from_unit)
        if source is None:
            continue
        base = float(value) * source[2]
        if to_unit in ("minimum", "auto"):
            best = None
            for candidate in units:
                if (best is None or candidate[2] >= best[2]) and base / candidate[2] >= 1.0:
                    best = candidate
            target = best or default
        else:
            target = sniff_unit(units, to_unit) or default
        return base / target[2], target[0]
    return float(value), "" if to_unit in _UNSCALED else to_unit


def scaled_label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's measurement.ScaledLabel: two decimals, '.00' dropped, unit appended, '0' bare."""
    scaled, unit = scale(value, from_unit, to_unit)
    text = f"{scaled:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + unit


def time_unit_ns(unit: str) -> float | None:
    """Nanoseconds per `unit` ("nanoseconds", "ms", ...) as pprof reads units, or None."""
    found = sniff_unit(TIME_UNITS, unit)
    return None if found is None else found[2]


def percentage(value: int, total: int) -> str:
    """pprof's measurement.Percentage: at least two significant digits, width 5, then '%'."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"
