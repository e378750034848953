"""A differential flame graph of baseline vs candidate CPU profiles, as one self-contained SVG.

Stacks of all repetitions are aggregated per side, each repetition scaled to µs of CPU per request
(its profile's total made its measured CPU per request, compare/functions.py) and the repetitions
averaged; without a per-request figure, to shares of its own total. A frame's width is the mean of
its two sides' costs (additive, so children always fit inside their parent); its colour is the
change of its cost, red where the candidate spends more per request, blue where it spends less,
white where nothing moved: a function whose work did not change stays white when another grows.
Hovering a frame shows its full name and both costs (an SVG <title>). The file has no scripts and
no network references; function names are XML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perfgate.compare.functions import ScaledProfiles, cpu_per_request_sides
from perfgate.compare.inputs import ComparisonInputs
from perfgate.profile.model import Profile
from perfgate.report import FLAMEGRAPH_FILE

WIDTH_PX = 1200.0
FRAME_HEIGHT_PX = 17
FONT_PX = 11
CHAR_WIDTH_PX = 6.6  # average advance of the 11 px monospace font
MARGIN_PX = 10
HEADER_PX = 58
MIN_FRAME_WIDTH_PX = 0.4  # narrower frames (and their children) are not drawn
MAX_DEPTH = 400


@dataclass
class _Frame:
    name: str
    baseline: float = 0.0  # the side's mean cost (µs per request, or % of CPU), inclusive of callees
    candidate: float = 0.0
    children: dict[str, _Frame] = field(default_factory=dict)

    @property
    def width_share(self) -> float:
        return (self.baseline + self.candidate) / 2

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline


def write_diff_flamegraph(baseline: Sequence[Profile] | ScaledProfiles,
                          candidate: Sequence[Profile] | ScaledProfiles, out_path: Path, *, title: str,
                          unit: str = "%") -> Path:
    """Write the differential flame graph SVG to out_path (parents created) and return the path.

    Profiles with their scales (ScaledProfiles) are drawn in `unit` per request; bare profiles in shares."""
    sides = [side if isinstance(side, ScaledProfiles) else _shares(side) for side in (baseline, candidate)]
    if not all(isinstance(side, ScaledProfiles) for side in (baseline, candidate)):
        unit = "%"
    root = _merged_tree(*sides)
    svg = _render(root, title, unit, baseline_reps=len(sides[0].profiles), candidate_reps=len(sides[1].profiles))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(svg, encoding="utf-8")
    return out_path


def _shares(profiles: Sequence[Profile]) -> ScaledProfiles:
    return ScaledProfiles(tuple(profiles), tuple(100.0 / abs(p.total) if p.total else 0.0 for p in profiles))


def _merged_tree(baseline: ScaledProfiles, candidate: ScaledProfiles) -> _Frame:
    root = _Frame("all")
    for side, scaled in (("baseline", baseline), ("candidate", candidate)):
        usable = [(profile, scale) for profile, scale in zip(scaled.profiles, scaled.scales, strict=True)
                  if profile.total and scale]
        for profile, profile_scale in usable:
            scale = profile_scale / len(usable)
            for stack, weight in profile.stacks.items():
                share = weight * scale
                frame = root
                setattr(frame, side, getattr(frame, side) + share)
                for name in stack[:MAX_DEPTH]:
                    child = frame.children.get(name)
                    if child is None:
                        child = frame.children[name] = _Frame(name)
                    setattr(child, side, getattr(child, side) + share)
                    frame = child
    return root


@dataclass(frozen=True)
class _Placed:
    frame: _Frame
    depth: int
    x: float
    width: float


def _layout(root: _Frame) -> Iterator[_Placed]:
    """Frames with their position: depth 0 is the root; children sit left to right by name."""
    if root.width_share <= 0:
        return
    pending = [(root, 0, 0.0, WIDTH_PX - 2 * MARGIN_PX)]
    while pending:
        frame, depth, x, width = pending.pop()
        yield _Placed(frame, depth, x, width)
        scale = width / frame.width_share
        offset = x
        for name in sorted(frame.children):
            child = frame.children[name]
            child_width = child.width_share * scale
            if child_width >= MIN_FRAME_WIDTH_PX:
                pending.append((child, depth + 1, offset, child_width))
            offset += child_width


def _render(root: _Frame, title: str, unit: str, *, baseline_reps: int, candidate_reps: int) -> str:
    placed = list(_layout(root))
    depth = max((p.depth for p in placed), default=0)
    height = HEADER_PX + (depth + 1) * FRAME_HEIGHT_PX + 2 * MARGIN_PX
    largest = max((abs(p.frame.delta) for p in placed), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX:.0f}" height="{height}" '
        f'viewBox="0 0 {WIDTH_PX:.0f} {height}" font-family="monospace" font-size="{FONT_PX}">',
        f'<rect x="0" y="0" width="{WIDTH_PX:.0f}" height="{height}" fill="#fafafa"/>',
        f'<text x="{WIDTH_PX / 2:.0f}" y="22" text-anchor="middle" font-size="16">{_escape(title)}</text>',
        f'<text x="{WIDTH_PX / 2:.0f}" y="42" text-anchor="middle" fill="#555">'
        f'{_escape(_legend(baseline_reps, candidate_reps, largest, unit))}</text>',
    ]
    bottom = height - MARGIN_PX
    for item in placed:
        y = bottom - (item.depth + 1) * FRAME_HEIGHT_PX
        parts.append(_frame_svg(item, y, largest, unit))
    parts.append("</svg>\n")
    return "\n".join(parts)


def _legend(baseline_reps: int, candidate_reps: int, largest: float, unit: str) -> str:
    what = "share of CPU" if unit == "%" else f"CPU per request ({unit})"
    full = f"{largest:.1f} pp" if unit == "%" else f"{largest:.3g} {unit}"
    return (f"width: mean {what} of both sides ({baseline_reps} baseline, {candidate_reps} candidate "
            f"repetitions); red: more in the candidate, blue: less (full colour = {full})")


def _frame_svg(item: _Placed, y: float, largest: float, unit: str) -> str:
    frame = item.frame
    if unit == "%":
        tooltip = (f"{frame.name}\nbaseline {frame.baseline:.2f} % of CPU, candidate {frame.candidate:.2f} %"
                   f" ({frame.delta:+.2f} pp)")
    else:
        tooltip = (f"{frame.name}\nbaseline {frame.baseline:.3g} {unit} per request, candidate "
                   f"{frame.candidate:.3g} {unit} ({frame.delta:+.3g} {unit})")
    label = _fit(frame.name, item.width)
    text = (f'<text x="{MARGIN_PX + item.x + 3:.1f}" y="{y + FRAME_HEIGHT_PX - 5}">{_escape(label)}</text>'
            if label else "")
    return (f'<g><title>{_escape(tooltip)}</title>'
            f'<rect x="{MARGIN_PX + item.x:.1f}" y="{y}" width="{item.width:.1f}" height="{FRAME_HEIGHT_PX - 1}" '
            f'fill="{_colour(frame.delta, largest)}" stroke="#ffffff" stroke-width="0.5" rx="1"/>{text}</g>')


def _fit(name: str, width: float) -> str:
    room = int((width - 6) / CHAR_WIDTH_PX)
    if room < 3:
        return ""
    return name if len(name) <= room else name[: room - 2] + ".."


def _colour(delta: float, largest: float) -> str:
    """White for no change, towards red (#d62728-ish) for growth and blue for shrinkage."""
    strength = min(abs(delta) / largest, 1.0) ** 0.6  # make small changes visible
    if delta >= 0:
        red, green, blue = 255, 255 - 180 * strength, 255 - 190 * strength
    else:
        red, green, blue = 255 - 200 * strength, 255 - 140 * strength, 255
    return f"rgb({red:.0f},{green:.0f},{blue:.0f})"


def _escape(text: str) -> str:
    """Escape for SVG text and attributes; drop characters XML 1.0 cannot hold at all."""
    cleaned = "".join(ch for ch in text if ch in "\t\n\r" or 0x20 <= ord(ch) < 0xD800
                      or 0xE000 <= ord(ch) <= 0xFFFD or ord(ch) >= 0x10000)
    return html.escape(cleaned, quote=True)


def write_flamegraph(inputs: ComparisonInputs, out: Path, *, title: str) -> Path | None:
    """OUT/flamegraph.svg: both sides' profiles in CPU per request (or shares, when the calls are not known
    on both sides); None without a baseline with profiles. The report names it when the CPU view is shown."""
    base, cand = inputs.baseline, inputs.candidate
    if base is None or not base.profiles or not cand.profiles:
        return None
    scaled = cpu_per_request_sides(base, cand)
    if scaled is None:
        return write_diff_flamegraph(base.profiles, cand.profiles, out / FLAMEGRAPH_FILE,
                                     title=f"{title}: CPU share, candidate vs baseline")
    return write_diff_flamegraph(scaled[0], scaled[1], out / FLAMEGRAPH_FILE, unit="µs",
                                 title=f"{title}: CPU per request, candidate vs baseline")
