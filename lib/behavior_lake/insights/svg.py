"""Inline SVG charts: no script, no external resource, so a page renders anywhere (a
file:// URL, an e-mail attachment, a locked-down browser).

Every chart is an <svg class="chart" data-chart=ID role="img"> with a <title>; values are
drawn as given (None = not observed: a gap in a line, a hatched cell in a heatmap)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
W, H = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48

HATCH = (
    '<defs><pattern id="{id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3f4f6"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#d1d5db" stroke-width="2"/></pattern></defs>'
)


def _open(chart_id: str, title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" style="max-width:100%;height:auto" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        HATCH.format(id=escape(chart_id)),
    ]


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def short(value: float | None, fmt: str = "num") -> str:
    """A label: 1.2k, 3.4M, 12.5%, or the number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if fmt == "pct":
        return f"{value * 100:.1f}%"
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.1f}B"
    if a >= 1e6:
        return f"{value / 1e6:.1f}M"
    if a >= 1e4:
        return f"{value / 1e3:.1f}k"
    if a >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.1f}" if a >= 10 else f"{value:.2f}"


def line_chart(
    chart_id: str,
    title: str,
    x: Sequence[str],
    series: dict[str, Sequence[float | None]],
    shaded: Sequence[bool] = (),
    fmt: str = "num",
    shade_label: str = "not over yet (hollow: partial value)",
) -> str:
    """Lines over categories `x` (dates as text); `shaded[i]` = the i-th period is not
    complete: a hatched band behind it, labelled in the legend."""
    n = len(x)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    values = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    top = nice_max(max(values, default=1.0))
    step = pw / max(n - 1, 1)
    px = lambda i: LEFT + i * step  # noqa: E731
    py = lambda v: TOP + ph - (v / top) * ph  # noqa: E731
    out = _open(chart_id, title, W, H)
    for i, flag in enumerate(shaded):
        if flag:
            x0 = max(LEFT, px(i) - step / 2)
            x1 = min(LEFT + pw, px(i) + step / 2) if n > 1 else LEFT + pw
            out.append(
                f'<rect class="shade" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 2):.1f}" '
                f'height="{ph}" fill="url(#{escape(chart_id)}-hatch)"/>'
            )
    out += _y_axis(top, fmt, pw, ph)
    ticks = sorted({round(i * (n - 1) / 6) for i in range(7)}) if n > 1 else [0]
    for i in ticks:
        anchor = "end" if i == n - 1 and n > 1 else "middle"
        out.append(
            f'<text x="{px(i):.1f}" y="{H - BOTTOM + 16}" font-size="11" text-anchor="{anchor}" '
            f'fill="#374151">{escape(str(x[i]))}</text>'
        )
    partial = [i < len(shaded) and shaded[i] for i in range(n)]
    for k, ys in enumerate(series.values()):
        color = PALETTE[k % len(PALETTE)]
        # a period not over is a hollow mark on its own, never part of the line
        for i, v in enumerate(ys):
            if partial[i] and v is not None and math.isfinite(v):
                out.append(
                    f'<circle class="partial" cx="{px(i):.1f}" cy="{py(v):.1f}" r="3.5" '
                    f'fill="#ffffff" stroke="{color}" stroke-width="1.5"/>'
                )
        for run in _runs([None if partial[i] else v for i, v in enumerate(ys)]):
            pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in run)
            if len(run) == 1:
                i, v = run[0]
                out.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}"/>')
            else:
                out.append(
                    f'<polyline class="series" points="{pts}" fill="none" stroke="{color}" '
                    'stroke-width="2"/>'
                )
    legend = [(PALETTE[k % len(PALETTE)], name) for k, name in enumerate(series)]
    out += _legend(legend, any(shaded), chart_id, shade_label)
    out.append("</svg>")
    return "".join(out)


def _runs(ys: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(ys):
        if v is None or not math.isfinite(v):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, float(v)))
    return [r for r in runs if r]


def _y_axis(top: float, fmt: str, pw: float, ph: float) -> list[str]:
    out = []
    for t in range(5):
        v = top * t / 4
        y = TOP + ph - ph * t / 4
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#374151">{short(v, fmt)}</text>'
        )
    return out


def _legend(items, shaded: bool, chart_id: str, shade_label: str) -> list[str]:
    out, x = [], LEFT
    y = H - 10
    for color, name in items:
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="4" fill="{color}"/>'
            f'<text x="{x + 16}" y="{y - 4}" font-size="11" fill="#111827">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    if shaded:
        out.append(
            f'<rect x="{x}" y="{y - 13}" width="12" height="12" '
            f'fill="url(#{escape(chart_id)}-hatch)" stroke="#9ca3af"/>'
            f'<text x="{x + 16}" y="{y - 4}" font-size="11" fill="#111827">'
            f"{escape(shade_label)}</text>"
        )
    return out


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    fmt: str = "num",
    notes: Sequence[str] | None = None,
    highlight: Sequence[bool] | None = None,
) -> str:
    """Horizontal bars, one per label, the value (and a note) at the end of the bar."""
    n = max(len(labels), 1)
    row = 26
    label_w = min(300, 12 + 7 * max((len(str(lb)) for lb in labels), default=4))
    height = TOP + n * row + 12
    pw = W - label_w - 290  # room for the value and its note after the longest bar
    top = nice_max(max((v for v in values if v is not None), default=1.0))
    out = _open(chart_id, title, W, height)
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row
        text = str(lab) if len(str(lab)) <= 42 else str(lab)[:41] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" '
            f'fill="#111827">{escape(text)}<title>{escape(str(lab))}</title></text>'
        )
        width = 0.0 if v is None else max(pw * v / top, 1.0)
        color = PALETTE[1] if highlight and highlight[i] else PALETTE[0]
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{color}"/>'
        )
        note = f" · {notes[i]}" if notes and notes[i] else ""
        out.append(
            f'<text x="{label_w + width + 6:.1f}" y="{y + 16}" font-size="12" fill="#374151">'
            f"{escape(short(v, fmt) + note)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def heatmap(
    chart_id: str,
    title: str,
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    fmt: str = "pct",
    missing_label: str = "not yet observed",
) -> str:
    """A matrix of shares (0..1): darker = higher; None = hatched, labelled as missing."""
    cell_w, cell_h = min(56, (W - 140) / max(len(cols), 1)), 22
    left, top = 130, 34
    width = int(left + cell_w * len(cols) + 20)
    height = int(top + cell_h * len(rows) + 40)
    out = _open(chart_id, title, max(width, 420), height)
    for j, c in enumerate(cols):
        out.append(
            f'<text x="{left + j * cell_w + cell_w / 2:.1f}" y="{top - 8}" font-size="11" '
            f'text-anchor="middle" fill="#374151">{escape(str(c))}</text>'
        )
    for i, r in enumerate(rows):
        y = top + i * cell_h
        out.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end" '
            f'fill="#111827">{escape(str(r))}</text>'
        )
        for j, v in enumerate(values[i]):
            x = left + j * cell_w
            if v is None:
                out.append(
                    f'<rect class="cell missing" x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" '
                    f'height="{cell_h - 1}" fill="url(#{escape(chart_id)}-hatch)"/>'
                )
                continue
            shade = max(0.0, min(1.0, float(v)))
            light = int(245 - 170 * shade)
            fill = f"rgb({light},{int(light * 0.98 + 4)},255)"
            ink = "#ffffff" if shade > 0.55 else "#111827"
            out.append(
                f'<rect class="cell" x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" '
                f'height="{cell_h - 1}" fill="{fill}"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + 15}" font-size="10" '
                f'text-anchor="middle" fill="{ink}">{short(v, fmt)}</text>'
            )
    y = top + cell_h * len(rows) + 22
    out.append(
        f'<rect x="{left}" y="{y - 11}" width="12" height="12" '
        f'fill="url(#{escape(chart_id)}-hatch)" stroke="#9ca3af"/>'
        f'<text x="{left + 16}" y="{y}" font-size="11" fill="#111827">'
        f"{escape(missing_label)}</text>"
    )
    out.append("</svg>")
    return "".join(out)


def interval_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    points: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    fmt: str = "pct",
    highlight: Sequence[bool] | None = None,
) -> str:
    """One row per label: the estimate as a dot, its interval as a line, and a zero line
    (an interval crossing zero is compatible with no effect). Highlighted rows are red."""
    n = max(len(labels), 1)
    row = 24
    label_w = min(320, 12 + 7 * max((len(str(lb)) for lb in labels), default=4))
    height = TOP + n * row + 30
    right = 150
    pw = W - label_w - right
    ends = [abs(v) for v in (*lows, *highs, *points) if v is not None and math.isfinite(v)]
    half = nice_max(max(ends, default=1.0))
    x0 = label_w + pw / 2

    def xpos(v: float) -> float:
        return x0 + pw / 2 * max(-1.0, min(1.0, v / half))

    out = _open(chart_id, title, W, height)
    out.append(
        f'<line x1="{x0:.1f}" y1="{TOP - 4}" x2="{x0:.1f}" y2="{TOP + n * row}" '
        f'stroke="#9ca3af" stroke-dasharray="4 3"/>'
    )
    for v in (-half, half):
        out.append(
            f'<text x="{xpos(v):.1f}" y="{TOP + n * row + 16}" font-size="11" '
            f'text-anchor="middle" fill="#374151">{escape(short(v, fmt))}</text>'
        )
    for i, lab in enumerate(labels):
        y = TOP + i * row + row / 2
        text = str(lab) if len(str(lab)) <= 44 else str(lab)[:43] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#111827">{escape(text)}<title>{escape(str(lab))}</title></text>'
        )
        p, lo, hi = points[i], lows[i], highs[i]
        if p is None:
            continue
        color = PALETTE[1] if highlight and highlight[i] else PALETTE[0]
        if lo is not None and hi is not None:
            out.append(
                f'<line class="interval" x1="{xpos(lo):.1f}" y1="{y:.1f}" x2="{xpos(hi):.1f}" '
                f'y2="{y:.1f}" stroke="{color}" stroke-width="2"/>'
            )
        span = "" if lo is None or hi is None else f" [{short(lo, fmt)}, {short(hi, fmt)}]"
        out.append(
            f'<circle class="bar" cx="{xpos(p):.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'
            f'<text x="{label_w + pw + 8}" y="{y + 4:.1f}" font-size="11" fill="#374151">'
            f"{escape(short(p, fmt) + span)}</text>"
        )
    out.append("</svg>")
    return "".join(out)
