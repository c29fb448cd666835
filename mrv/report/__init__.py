"""Human-readable twin of the signed monitoring report: HTML and PDF drawn from the same report
JSON (the signed credential's subject plus signature details), so the two cannot drift.

``render_html(report, *, series=None, quarantine=None) -> bytes`` and
``render_pdf(report, *, series=None, quarantine=None) -> bytes`` take the report document and,
for the charts, the monitored series (``meter_id, ts, value`` [kWh], optionally
``calibration_valid``) and the quarantine frame (``meter_id, ts, rule_id``). Both are pure and
deterministic. ``build_document`` is the format-neutral document both draw.
"""

from mrv.report.render import build_document, render_html, render_pdf

__all__ = ["build_document", "render_html", "render_pdf"]
