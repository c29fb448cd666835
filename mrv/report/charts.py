"""Charts for the human-readable report: the monitored series per meter and the boundary map.

Pure functions: data in, image bytes out (``svg`` for HTML, ``png`` for PDF, from the same figure
code, so both formats show the same picture). Matplotlib is imported on first use and drawn on
:class:`matplotlib.figure.Figure` objects without pyplot, so no global backend is set and nothing
is read at import time. Output is deterministic: matplotlib's defaults are restored around each
drawing (a user's ``matplotlibrc`` changes nothing), SVG ids are salted with a fixed string, and
neither format carries a date or creator. Fonts are the DejaVu faces shipped inside matplotlib,
drawn as paths in SVG, so the picture is the same on every machine.

Series chart: daily energy per meter (days in the monitoring-period timezone), with

* gaps (from the report's gap list) shaded red and flagged at the top of the axis,
* quarantined readings (from the quarantine frame) flagged with orange triangles,
* readings taken outside a valid calibration (``calibration_valid == False`` in the series,
  when that column is present) shaded purple.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mrv.errors import ReportError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ImageFormat", "boundary_map", "daily_energy", "series_chart"]

ImageFormat = Literal["svg", "png"]

PNG_DPI = 200
SVG_HASH_SALT = "open-dmrv-report"

# Colours (colour-blind-safe Okabe-Ito where they carry meaning).
ENERGY = "#0072B2"
GAP = "#D55E00"
QUARANTINE = "#E69F00"
CALIBRATION = "#CC79A7"
BOUNDARY_EDGE = "#006D2C"
BOUNDARY_FILL = "#A1D99B"

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.0,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,  # meter ids and labels are data: a "$" is a dollar sign, not TeX
    "svg.fonttype": "path",
    "svg.hashsalt": SVG_HASH_SALT,
    "svg.image_inline": True,
    "path.simplify": True,
}

# rcParams are process-global; serialise drawing so concurrent renders cannot mix styles.
_DRAW_LOCK = threading.Lock()


@contextmanager
def _drawing() -> Iterator[None]:
    import matplotlib

    with _DRAW_LOCK, matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)  # type: ignore[arg-type]
        yield


def _save(fig: Figure, fmt: ImageFormat) -> bytes:
    buf = io.BytesIO()
    if fmt == "svg":
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    elif fmt == "png":
        fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    else:  # pragma: no cover - guarded by the Literal type
        raise ReportError(f"unknown image format {fmt!r} (expected 'svg' or 'png')")
    return buf.getvalue()


# --------------------------------------------------------------------------- series


def _utc(values: Any, *, what: str) -> pd.Series:
    ts = pd.to_datetime(pd.Series(values), utc=False, errors="raise")
    if ts.dt.tz is None:
        raise ReportError(f"{what}: timestamps must be timezone-aware (UTC), got naive values")
    return ts.dt.tz_convert("UTC")


def _check_columns(df: pd.DataFrame, *, name: str, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{name} frame lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})")


def daily_energy(series: pd.DataFrame, *, timezone: str, how: Literal["sum", "mean"] = "sum") -> pd.DataFrame:
    """Energy per meter and local calendar day: columns ``meter_id, day, kwh, readings``.

    ``series`` has ``meter_id``, ``ts`` (tz-aware) and ``value`` [kWh]; ``day`` is the date in
    ``timezone`` of the reading's timestamp. Days without readings are absent.
    """
    _check_columns(series, name="series", required=("meter_id", "ts", "value"))
    if series.empty:
        return pd.DataFrame({"meter_id": pd.Series(dtype=str), "day": pd.Series(dtype=object), "kwh": pd.Series(dtype=float), "readings": pd.Series(dtype=int)})
    local = _utc(series["ts"], what="series.ts").dt.tz_convert(timezone)
    frame = pd.DataFrame(
        {
            "meter_id": series["meter_id"].astype(str).to_numpy(),
            "day": local.dt.date.to_numpy(),
            "kwh": pd.to_numeric(series["value"], errors="raise").astype(float).to_numpy(),
        }
    )
    out = frame.groupby(["meter_id", "day"], sort=True).agg(kwh=("kwh", how), readings=("kwh", "size")).reset_index()
    return out


def _local_naive(ts: pd.Timestamp, tz: str) -> pd.Timestamp:
    return ts.tz_convert(tz).tz_localize(None)


def _calibration_spans(series: pd.DataFrame, *, timezone: str) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Runs of consecutive readings with ``calibration_valid == False`` per meter, as local-naive
    [first reading, last reading + one interval) spans."""
    if "calibration_valid" not in series.columns or series.empty:
        return {}
    df = pd.DataFrame(
        {
            "meter_id": series["meter_id"].astype(str).reset_index(drop=True),
            "ts": _utc(series["ts"], what="series.ts").reset_index(drop=True),
            "bad": ~series["calibration_valid"].astype(bool).reset_index(drop=True),
        }
    ).sort_values(["meter_id", "ts"], kind="stable")
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for meter, g in df.groupby("meter_id", sort=True):
        if not g["bad"].any():
            continue
        step = g["ts"].diff().median()
        if pd.isna(step):
            step = pd.Timedelta(minutes=15)
        run = (g["bad"] != g["bad"].shift()).cumsum()
        for _, r in g[g["bad"]].groupby(run[g["bad"]], sort=True):
            spans.setdefault(str(meter), []).append(
                (_local_naive(r["ts"].iloc[0], timezone), _local_naive(r["ts"].iloc[-1] + step, timezone))
            )
    return spans


def _gap_spans(gaps: Sequence[Mapping[str, Any]], *, timezone: str) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp, float | None]]]:
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, float | None]]] = {}
    for i, g in enumerate(gaps):
        try:
            start = pd.Timestamp(g["gap_start"])
            end = pd.Timestamp(g["gap_end"])
            meter = str(g["meter_id"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ReportError(f"gaps[{i}]: needs meter_id, gap_start and gap_end as timestamps ({exc})") from None
        if start.tzinfo is None or end.tzinfo is None:
            raise ReportError(f"gaps[{i}]: gap_start/gap_end must carry a UTC offset")
        hours = g.get("hours")
        spans.setdefault(meter, []).append((_local_naive(start, timezone), _local_naive(end, timezone), float(hours) if hours is not None else None))
    return spans


def _quarantine_days(quarantine: pd.DataFrame | None, *, timezone: str) -> dict[str, pd.Series]:
    """Quarantined rows per meter and local day (index: local-naive midnight)."""
    if quarantine is None or quarantine.empty:
        return {}
    _check_columns(quarantine, name="quarantine", required=("meter_id", "ts"))
    local = _utc(quarantine["ts"], what="quarantine.ts").dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    df = pd.DataFrame({"meter_id": quarantine["meter_id"].astype(str).to_numpy(), "day": local.to_numpy()})
    return {str(m): g.groupby("day").size() for m, g in df.groupby("meter_id", sort=True)}


def _fmt_energy(kwh: float) -> str:
    mwh = kwh / 1000.0
    return f"{mwh:,.0f} MWh" if abs(mwh) >= 100 else f"{mwh:,.2f} MWh"


def series_chart(
    *,
    series: pd.DataFrame,
    quarantine: pd.DataFrame | None = None,
    gaps: Sequence[Mapping[str, Any]] = (),
    timezone: str = "UTC",
    period: tuple[date, date] | None = None,
    fmt: ImageFormat = "svg",
    how: Literal["sum", "mean"] = "sum",
    units: Mapping[str, str] | None = None,
) -> bytes:
    """Daily energy of each meter (one panel per meter) with gaps, quarantined readings and
    calibration lapses marked. ``period`` (inclusive local dates) fixes the x range.

    Series that are not energy (instrument readings) pass ``how="mean"`` and ``units`` (panel ->
    unit): each panel then shows the daily mean of valid readings in that unit."""
    daily = daily_energy(series, timezone=timezone, how=how)
    qdays = _quarantine_days(quarantine, timezone=timezone)
    gspans = _gap_spans(gaps, timezone=timezone)
    cspans = _calibration_spans(series, timezone=timezone)
    meters = sorted(set(daily["meter_id"]) | set(qdays) | set(gspans) | set(cspans))
    if not meters:
        raise ReportError("series chart: no meter has any reading, gap or quarantined row")
    if period is not None:
        x0, x1 = pd.Timestamp(period[0]), pd.Timestamp(period[1] + timedelta(days=1))
    else:
        days = pd.to_datetime(pd.Series(daily["day"]))
        x0, x1 = days.min(), days.max() + pd.Timedelta(days=1)

    with _drawing():
        from matplotlib import dates as mdates
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        n = len(meters)
        fig = Figure(figsize=(7.5, 0.55 + 1.45 * n), layout="constrained")
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        used: dict[str, Any] = {}
        for ax, meter in zip(axes, meters, strict=True):
            d = daily[daily["meter_id"] == meter]
            kwh = d["kwh"].to_numpy(dtype=float)
            peak = float(kwh.max()) if len(kwh) else 0.0
            scale, unit = (1000.0, "MWh/day") if peak >= 1000.0 else (1.0, "kWh/day")
            if units is not None:
                scale, unit = 1.0, f"{units.get(meter, '')} (daily mean)"
            x = pd.to_datetime(pd.Series(d["day"])).to_numpy()
            if len(x):
                # Each day drawn as a step over [day, day + 1); a day without readings breaks the line.
                full = pd.Series(kwh / scale, index=pd.DatetimeIndex(x)).reindex(pd.date_range(min(x0, pd.Timestamp(x.min())), max(x1, pd.Timestamp(x.max()) + pd.Timedelta(days=1)), freq="D"))
                xs = full.index.to_numpy()
                ys = full.to_numpy()
                ax.fill_between(xs, ys, step="post", color=ENERGY, alpha=0.35, linewidth=0)
                ax.step(xs, ys, where="post", color=ENERGY, linewidth=0.5)
                used["energy"] = Patch(facecolor=ENERGY, alpha=0.5, label="daily energy (valid readings)" if units is None else "daily mean (valid readings)")
            for start, end in cspans.get(meter, []):
                ax.axvspan(start, end, color=CALIBRATION, alpha=0.30, linewidth=0)
                used["calibration"] = Patch(facecolor=CALIBRATION, alpha=0.45, label="outside calibration (MPE)")
            for start, end, hours in gspans.get(meter, []):
                ax.axvspan(start, end, color=GAP, alpha=0.30, linewidth=0)
                mid = start + (end - start) / 2
                ax.plot([mid], [1.0], marker="v", color=GAP, markersize=5, transform=ax.get_xaxis_transform(), clip_on=False)
                label = f"gap {hours:g} h" if hours is not None else "gap"
                ax.annotate(label, xy=(mdates.date2num(mid), 1.0), xycoords=ax.get_xaxis_transform(), xytext=(4, -1), textcoords="offset points", fontsize=6.5, color=GAP, va="top")
                used["gap"] = Patch(facecolor=GAP, alpha=0.45, label="gap (no readings)")
            q = qdays.get(meter)
            if q is not None and len(q):
                qx = (q.index + pd.Timedelta(hours=12)).to_numpy()
                ax.plot(qx, [0.93] * len(qx), linestyle="none", marker="^", color=QUARANTINE, markersize=5, markeredgecolor="#7a5200", markeredgewidth=0.4, transform=ax.get_xaxis_transform(), clip_on=False)
                for day, count in q.items():
                    ax.annotate(f"{count} quarantined", xy=(mdates.date2num(day + pd.Timedelta(hours=12)), 0.93), xycoords=ax.get_xaxis_transform(), xytext=(5, -2), textcoords="offset points", fontsize=6.5, color="#7a5200", va="top")
                used["quarantine"] = Line2D([], [], linestyle="none", marker="^", color=QUARANTINE, markeredgecolor="#7a5200", label="quarantined readings")
            ax.set_title(meter, loc="left", fontweight="bold")
            if len(kwh) and units is None:
                ax.set_title(f"Σ {_fmt_energy(float(kwh.sum()))} (valid readings)", loc="right", fontsize=7, color="#444444")
            ax.set_ylabel(unit)
            if units is None or (len(kwh) and float(np.nanmin(kwh)) >= 0):
                ax.set_ylim(bottom=0)
            ax.margins(x=0)
            ax.grid(axis="y", color="#dddddd", linewidth=0.5)
            ax.set_axisbelow(True)
        axes[-1].set_xlim(x0, x1)
        locator = mdates.MonthLocator() if (x1 - x0) > pd.Timedelta(days=62) else mdates.AutoDateLocator()
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%b %Y" if isinstance(locator, mdates.MonthLocator) else "%d %b"))
        for label in axes[-1].get_xticklabels():
            label.set_fontsize(7)
        axes[-1].set_xlabel(f"local date ({timezone})")
        order = [k for k in ("energy", "gap", "quarantine", "calibration") if k in used]
        if order:
            fig.legend(handles=[used[k] for k in order], loc="outside upper center", ncols=len(order), frameon=False)
        return _save(fig, fmt)


# --------------------------------------------------------------------------- boundary map


def _rings(geometry: Mapping[str, Any]) -> tuple[str, list[list[list[tuple[float, float]]]]]:
    """(kind, polygons) where each polygon is [exterior, *holes] of (lon, lat); a Point is one
    polygon with one single-position ring."""
    kind = geometry.get("type")
    coords: Any = geometry.get("coordinates")

    def pos(p: Any) -> tuple[float, float]:
        if not isinstance(p, (list, tuple)) or len(p) < 2:
            raise ReportError(f"boundary: position {p!r} is not [lon, lat]")
        lon, lat = float(p[0]), float(p[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or not (math.isfinite(lon) and math.isfinite(lat)):
            raise ReportError(f"boundary: position {p!r} is outside lon [-180, 180], lat [-90, 90]")
        return lon, lat

    try:
        if kind == "Point":
            return kind, [[[pos(coords)]]]
        if kind == "Polygon":
            return kind, [[[pos(p) for p in ring] for ring in coords]]
        if kind == "MultiPolygon":
            return kind, [[[pos(p) for p in ring] for ring in poly] for poly in coords]
    except TypeError:
        raise ReportError(f"boundary: malformed {kind} coordinates") from None
    raise ReportError(f"boundary: geometry type {kind!r} is not drawn (Point, Polygon or MultiPolygon)")


def _nice_length(km: float) -> float:
    if km <= 0:
        return 1.0
    exp = math.floor(math.log10(km))
    for m in (5, 2, 1):
        if m * 10**exp <= km:
            return m * 10**exp
    return 10**exp


def _deg(value: float, pos_sym: str, neg_sym: str, decimals: int) -> str:
    sym = pos_sym if value >= 0 else neg_sym
    return f"{abs(value):.{decimals}f}°{sym}"


def boundary_map(geometry: Mapping[str, Any], *, fmt: ImageFormat = "svg", layers: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """The project boundary (GeoJSON Point, Polygon or MultiPolygon, WGS 84 lon/lat) on plain
    axes with degree ticks, a scale bar and a north arrow: no tiles, nothing fetched.

    ``layers``: further outlines drawn over it with a legend (e.g. project plots, matched control
    plots, the donor pool of a satellite project), each ``{"label", "color", "geometries": [GeoJSON
    Polygon or MultiPolygon, ...]}``; the map extent includes them."""
    kind, polygons = _rings(geometry)
    layer_polys = [(str(l["label"]), str(l.get("color", "#444444")), [_rings(g)[1] for g in l.get("geometries", [])]) for l in layers]
    lons = [p[0] for poly in polygons for ring in poly for p in ring]
    lats = [p[1] for poly in polygons for ring in poly for p in ring]
    for _, _, groups in layer_polys:
        for polys in groups:
            lons += [p[0] for poly in polys for ring in poly for p in ring]
            lats += [p[1] for poly in polys for ring in poly for p in ring]
    lon0, lon1, lat0, lat1 = min(lons), max(lons), min(lats), max(lats)
    pad = max(0.15 * max(lon1 - lon0, lat1 - lat0), 0.005)
    lon0, lon1, lat0, lat1 = lon0 - pad, lon1 + pad, lat0 - pad, lat1 + pad
    lat_mid = (lat0 + lat1) / 2
    coslat = max(math.cos(math.radians(lat_mid)), 0.01)

    with _drawing():
        from matplotlib.figure import Figure
        from matplotlib.patches import Polygon as MplPolygon
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        fig = Figure(figsize=(3.6, 3.6), layout="constrained")
        ax = fig.add_subplot()
        if kind == "Point":
            (lon, lat), = polygons[0][0]
            ax.plot([lon], [lat], marker="o", markersize=7, color=BOUNDARY_EDGE, markerfacecolor=BOUNDARY_FILL, markeredgewidth=1.5)
        else:
            for poly in polygons:
                exterior, *holes = poly
                ax.add_patch(MplPolygon(exterior, closed=True, facecolor=BOUNDARY_FILL, edgecolor=BOUNDARY_EDGE, linewidth=1.2, alpha=0.9))
                for hole in holes:
                    ax.add_patch(MplPolygon(hole, closed=True, facecolor="white", edgecolor=BOUNDARY_EDGE, linewidth=0.8, linestyle="--"))
        handles = []
        for label, color, groups in layer_polys:
            for polys in groups:
                for poly in polys:
                    ax.add_patch(MplPolygon(poly[0], closed=True, facecolor=color, edgecolor=color, linewidth=0.6, alpha=0.8))
            handles.append(MplPolygon([(0, 0)], closed=True, facecolor=color, edgecolor=color, label=f"{label} ({len(groups)})"))
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.85)
        ax.set_xlim(lon0, lon1)
        ax.set_ylim(lat0, lat1)
        ax.set_aspect(1.0 / coslat)  # a degree of longitude is cos(lat) as long as one of latitude
        for axis, lo, hi, nbins, (pos_sym, neg_sym) in ((ax.xaxis, lon0, lon1, 4, ("E", "W")), (ax.yaxis, lat0, lat1, 5, ("N", "S"))):
            locator = MaxNLocator(nbins, steps=[1, 2, 5, 10])
            ticks = locator.tick_values(lo, hi)
            step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
            decimals = max(0, math.ceil(-math.log10(step) - 1e-9))  # as many as the tick step needs
            axis.set_major_locator(locator)
            axis.set_major_formatter(FuncFormatter(lambda v, _p, d=decimals, ps=pos_sym, ns=neg_sym: _deg(v, ps, ns, d)))
        ax.tick_params(axis="x", labelrotation=0)
        ax.grid(color="#cccccc", linewidth=0.5, linestyle=":")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        # Scale bar: about a quarter of the width, bottom left.
        width_km = (lon1 - lon0) * 111.320 * coslat
        km = _nice_length(width_km / 4)
        bar_deg = km / (111.320 * coslat)
        bx, by = lon0 + 0.05 * (lon1 - lon0), lat0 + 0.06 * (lat1 - lat0)
        ax.plot([bx, bx + bar_deg], [by, by], color="black", linewidth=2, solid_capstyle="butt")
        ax.annotate(f"{km:g} km", xy=(bx + bar_deg / 2, by), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=7)
        ax.annotate("N", xy=(0.93, 0.95), xytext=(0.93, 0.80), xycoords="axes fraction", textcoords="axes fraction", ha="center", va="center", fontsize=8, fontweight="bold", arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.0})
        ax.set_xlabel("longitude (WGS 84)")
        ax.set_ylabel("latitude (WGS 84)")
        return _save(fig, fmt)
