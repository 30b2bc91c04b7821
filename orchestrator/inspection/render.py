"""Printing an inspection record: HTML (Jinja2, autoescaped) and PDF (WeasyPrint) from one
template, `orchestrator/data/templates/inspection_record.html`.

The printout is the form a plant files: host and place, scan and pattern bundle, findings,
quarantine actions, asset summary, the engineer's remarks, and every signature's manifestation
(§11.50: printed name, UTC date and time, meaning) with its verdict: valid, or INVALID when the
record changed after signing (Annex 11 §8.2: a printout shows whether data changed). The record
hash, page x of y and the time of printing are in the footer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import PlantsweepError
from orchestrator.results import utc_now

TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "templates"
TEMPLATE = "inspection_record.html"


class RenderError(PlantsweepError):
    """A record could not be printed (template, PDF engine, output file)."""


def render_html(view: dict[str, Any], *, generated_at: str | None = None,
                generated_by: str = "") -> str:
    """The record as a standalone HTML page."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from orchestrator import __version__

    return env.get_template(TEMPLATE).render(
        r=view, generated_at=generated_at or utc_now(), generated_by=generated_by,
        app_version=__version__,
    )


def render_pdf(view: dict[str, Any], out: Path, *, generated_at: str | None = None,
               generated_by: str = "") -> Path:
    """The record as a PDF (A4) at `out`."""
    html = render_html(view, generated_at=generated_at, generated_by=generated_by)
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise RenderError(f"the PDF engine (WeasyPrint) is not usable: {exc}") from None
    try:
        HTML(string=html, base_url=str(TEMPLATES)).write_pdf(str(out))
    except OSError as exc:
        raise RenderError(f"cannot write the PDF: {exc.strerror or exc}", path=str(out)) from None
    return out


def write_html(view: dict[str, Any], out: Path, *, generated_at: str | None = None,
               generated_by: str = "") -> Path:
    html = render_html(view, generated_at=generated_at, generated_by=generated_by)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"cannot write the HTML: {exc.strerror or exc}", path=str(out)) from None
    return out
