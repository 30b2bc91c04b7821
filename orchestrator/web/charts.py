"""Charts as inline SVG, drawn on the server (no JavaScript, nothing fetched).

    svg = stacked_columns(days, {"alert": [...], "none": [...]}, title="Scans per day")
    svg = coverage_bars([("basel", 12, 3, 1)])   # site, current, overdue, never scanned

Each returns markup for a Jinja2 page: text is escaped here, every bar has a <title> (the
browser shows it on hover) and the chart an aria-label, so the numbers are readable without
the picture too.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

# Level colours, also used by the CSS badges (static/style.css).
COLOURS = {
    "alert": "#b3261e",
    "warning": "#e07b00",
    "notice": "#c9a100",
    "info": "#5b8fd6",
    "none": "#4d9a5a",
    "current": "#4d9a5a",
    "overdue": "#e07b00",
    "never": "#9e9e9e",
}


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def stacked_columns(
    labels: Sequence[str],
    series: dict[str, Sequence[int]],
    *,
    title: str,
    width: int = 760,
    height: int = 220,
) -> Markup:
    """One column per label, stacked by series (bottom first, in dict order)."""
    left, bottom, top, right = 40, 30, 10, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    ymax = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0, 0.5, 1):  # grid lines with their values
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{ymax * frac:g}</text>'
        )
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            h = plot_h * value / ymax
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(name, "#777")}"><title>{escape(label)}: {value} '
                f"{escape(name)}</title></rect>"
            )
        if i % max(len(labels) // 6, 1) == 0:  # a few date labels, not all 30
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" '
                f'text-anchor="middle" font-size="11">{escape(label[5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def coverage_bars(
    rows: Sequence[tuple[str, int, int, int]], *, title: str, width: int = 760
) -> Markup:
    """One horizontal bar per site: hosts scanned within their interval, overdue, never."""
    label_w, bar_h, gap, top = 160, 18, 8, 6
    height = top + len(rows) * (bar_h + gap) + 24
    plot_w = width - label_w - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (site, current, overdue, never) in enumerate(rows):
        y = top + i * (bar_h + gap)
        total = current + overdue + never
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end" '
            f'font-size="12">{escape(site or "(no site)")}</text>'
        )
        x = float(label_w)
        for name, value in (("current", current), ("overdue", overdue), ("never", never)):
            if not value:
                continue
            w = plot_w * value / max(total, 1)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{COLOURS[name]}"><title>{escape(site or "(no site)")}: {value} '
                f"{name}</title></rect>"
            )
            x += w
        pct = round(100 * current / total) if total else 0
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + bar_h - 4}" font-size="12">{pct}%</text>'
        )
    y = top + len(rows) * (bar_h + gap) + 12
    x = label_w
    for name, text in (
        ("current", "scanned in interval"),
        ("overdue", "overdue"),
        ("never", "never scanned"),
    ):
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" '
            f'fill="{COLOURS[name]}"/><text x="{x + 14}" y="{y}" '
            f'font-size="11">{text}</text>'
        )
        x += 150
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(names: Sequence[str]) -> Markup:
    """A small HTML legend for stacked_columns."""
    items = "".join(
        f'<span class="key"><span class="swatch lvl-{escape(n)}"></span>{escape(n)}</span>'
        for n in names
    )
    return Markup(f'<p class="legend">{items}</p>')
