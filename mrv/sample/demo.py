"""A seeded, realistic sample project: one year of a 50 MW wind farm in Tamil Nadu, with faults.

:func:`generate_demo_project` writes ``project.yaml``, ``README.txt``, ``invoices.csv`` and the
meter files under ``data/``. Everything is synthetic and deterministic: the same seed and year give
byte-identical files. The data exercise every path of the pipeline:

* ``EXP-1``: export feeder A, interval kWh, monthly CSV, naive local time (Asia/Kolkata), timestamps
  mark the interval end, accuracy class 0.2. Faults: a two-day gap (rows missing) and one hour
  delivered twice (4 duplicated rows, same values).
* ``EXP-2``: export feeder B, cumulative kWh register, quarterly Parquet, UTC timestamps, class 0.5.
  Faults: exactly one register rollover, and a 7-day hole between two calibrations.
* ``IMP-1``: import (auxiliary consumption while the turbines idle), interval kWh, quarterly CSV
  with explicit +05:30 offsets, class 0.5.
* ``invoices.csv``: monthly sales invoices of gross export (EXP-1 + EXP-2 as delivered in
  the files, each interval once), within 0.05 % of the meters except one month about 2 % lower.

The wind is a Rayleigh (Weibull k = 2) speed built from two AR(1) Gaussian components, so it is
autocorrelated over hours, with a south-west-monsoon season and an afternoon peak, run through a
generic 2.5 MW-class power curve; the annual capacity factor comes out near 30 %.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DEMO_PARAMETERS", "PROJECT_ID", "generate_demo_project"]

# Methodology parameters written into the project file (value, unit, source). One edit here
# changes every generated demo.
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {
    # Published Indian grid factors (CEA CO2 Baseline Database v21.0, all-India, FY 2024-25); the
    # combined margin is computed with TOOL07's wind weights, so CEA's 50/50 CM is not given here.
    "EF_grid_OM_y": {
        "value": 0.9646,
        "unit": "tCO2e/MWh",
        "source": "CEA CO2 Baseline Database for the Indian Power Sector v21.0 (Nov 2025), all-India FY 2024-25, simple operating margin, excl. imports",
    },
    "EF_grid_BM_y": {
        "value": 0.5119,
        "unit": "tCO2e/MWh",
        "source": "CEA CO2 Baseline Database for the Indian Power Sector v21.0 (Nov 2025), all-India FY 2024-25, build margin",
    },
    "crediting_period": {"value": 1, "source": "project file: first crediting period"},
    # Required by CDM:ACM0002:22.0 (methodologies/cdm_acm0002/v22): a new wind farm.
    "project_activity": {"value": "greenfield", "source": "ACM0002 v22.0 applicability: greenfield power plant"},
}

PROJECT_ID = "DEMO-WIND-TN-001"
TIMEZONE = "Asia/Kolkata"
CAPACITY_MW = 50.0
INTERVAL_MIN = 15
# Near Aralvaimozhi / Muppandal (Kanyakumari district), the windiest pass in Tamil Nadu.
SITE_LON, SITE_LAT = 77.55, 8.265

# Feeder A carries 11 of the 20 turbines, feeder B 9.
SHARE_EXP1 = 0.55
REGISTER_MAX_KWH = 100_000_000.0  # an 8-digit kWh register
MAX_OUTPUT = 0.98  # farm output at the meters never exceeds this fraction of nameplate
FEEDER_SCATTER = 0.005  # each feeder's share varies a little (1 sigma), bounded by 3 sigma
IDLE_THRESHOLD = 0.002  # farm output (fraction of capacity) below which the auxiliaries draw from the grid
INVOICE_NOISE = 0.0005  # invoices agree with the meters within +-0.05 %
INVOICE_SHORTFALL = 0.02  # ...except one month

# Fault placement, as (month, day) in the demo year; chosen away from each other and from file edges.
GAP_START = (3, 14)  # EXP-1 rows missing for two whole local days from here
GAP_DAYS = 2
DUP_HOUR = (5, 10, 14)  # EXP-1: the hour starting 14:00 local on 10 May is delivered twice
CAL_LAPSE_FROM = (7, 4)  # EXP-2: no valid calibration for 7 days from here
CAL_LAPSE_DAYS = 7
ROLLOVER_TARGET = (9, 20)  # EXP-2's register passes register_max during this day (local)
INVOICE_SHORT_MONTH = 8


@dataclass(frozen=True)
class _Series:
    """The demo year on a regular 15-minute grid of interval starts."""

    start_utc: pd.Timestamp  # first interval start, UTC
    n: int
    local: pd.DatetimeIndex  # interval starts, local time

    def index_of(self, month: int, day: int, hour: int = 0) -> int:
        year = self.local[0].year
        t = pd.Timestamp(datetime(year, month, day, hour), tz=TIMEZONE)
        return int((t - self.local[0]) / pd.Timedelta(minutes=INTERVAL_MIN))


def _grid(year: int) -> _Series:
    tz = ZoneInfo(TIMEZONE)
    start = pd.Timestamp(datetime(year, 1, 1, tzinfo=tz))
    end = pd.Timestamp(datetime(year + 1, 1, 1, tzinfo=tz))
    n = int((end - start) / pd.Timedelta(minutes=INTERVAL_MIN))
    local = pd.date_range(start, periods=n, freq=f"{INTERVAL_MIN}min", unit="us")
    return _Series(start_utc=start.tz_convert("UTC"), n=n, local=local)


def _ar1(rng: np.random.Generator, n: int, phi: float) -> npt.NDArray[np.float64]:
    """Stationary AR(1) with unit variance. A plain loop: 35 k steps take milliseconds."""
    eps = rng.standard_normal(n) * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = float(rng.standard_normal())
    for i, e in enumerate(eps.tolist()):
        x = phi * x + e
        out[i] = x
    return out


def _power_curve(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Generic pitch-regulated turbine, fraction of rated power: cut-in 3, rated 12, cut-out 25 m/s."""
    v_in, v_rated, v_out = 3.0, 12.0, 25.0
    p = (v**3 - v_in**3) / (v_rated**3 - v_in**3)
    p = np.where(v < v_in, 0.0, np.where(v >= v_rated, 1.0, p))
    return np.where(v >= v_out, 0.0, p)


def _farm_output(rng: np.random.Generator, grid: _Series) -> npt.NDArray[np.float64]:
    """Farm output as a fraction of installed capacity, per interval."""
    # Hub-height wind decorrelates over roughly half a day.
    phi = float(np.exp(-INTERVAL_MIN / (10.0 * 60.0)))
    x, y = _ar1(rng, grid.n, phi), _ar1(rng, grid.n, phi)
    rayleigh = np.sqrt((x * x + y * y) / 2.0)  # Weibull k=2 with unit scale
    doy = grid.local.day_of_year.to_numpy().astype(float)
    hour = (grid.local.hour + grid.local.minute / 60.0).to_numpy()
    # South-west monsoon (June-September) dominates; a weaker north-east monsoon bump in November.
    scale = 6.4 + 6.5 * np.exp(-(((doy - 200.0) / 55.0) ** 2)) + 1.5 * np.exp(-(((doy - 325.0) / 25.0) ** 2))
    diurnal = 1.0 + 0.10 * np.sin(2.0 * np.pi * (hour - 10.0) / 24.0)  # afternoon peak
    v = scale * diurnal * rayleigh
    # Wake, availability and collection losses, plus turbulence between turbines; with the
    # losses the farm never delivers its full nameplate at the meters.
    losses = 0.93 * (1.0 + 0.02 * rng.standard_normal(grid.n))
    return np.clip(_power_curve(v) * losses, 0.0, MAX_OUTPUT)


def _fmt_local_naive(idx: pd.DatetimeIndex) -> pd.Index:
    return idx.strftime("%Y-%m-%d %H:%M:%S")


def _fmt_offset(idx: pd.DatetimeIndex) -> pd.Index:
    s = pd.Series(idx.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return pd.Index(s.str[:-2] + ":" + s.str[-2:])


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.3f")


def _calibration_yaml(items: list[tuple[date, date, str]]) -> str:
    return "\n".join(f"        - {{valid_from: {a.isoformat()}, valid_to: {b.isoformat()}, certificate: \"{c}\"}}" for a, b, c in items)


def generate_demo_project(out_dir: Path, *, seed: int = 7, year: int = 2023) -> Path:
    """Write the sample project into ``out_dir`` and return the path of its ``project.yaml``.

    Deterministic: the same ``seed`` and ``year`` give byte-identical files. File names carry the
    year and the globs in the project file match only that year, so regenerating for another year
    in the same directory cannot mix the two. ``project.yaml`` is written last.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grid = _grid(year)
    n = grid.n
    dt = pd.Timedelta(minutes=INTERVAL_MIN)
    month = grid.local.month.to_numpy()
    quarter = (month - 1) // 3 + 1

    cf = _farm_output(rng, grid)
    mwh_per_interval = CAPACITY_MW * INTERVAL_MIN / 60.0
    # Each feeder sees its turbines' share with its own small scatter (bounded, so the two never
    # add up to more than nameplate); the meters resolve 1 Wh.
    def scatter() -> npt.NDArray[np.float64]:
        return (1.0 + FEEDER_SCATTER * rng.standard_normal(n)).clip(1.0 - 3 * FEEDER_SCATTER, 1.0 + 3 * FEEDER_SCATTER)

    exp1 = np.round(cf * SHARE_EXP1 * mwh_per_interval * 1000.0 * scatter(), 3)
    exp2 = np.round(cf * (1.0 - SHARE_EXP1) * mwh_per_interval * 1000.0 * scatter(), 3)
    idle = cf < IDLE_THRESHOLD
    aux_kw = 25.0 + 15.0 * rng.random(n)  # controllers, yaw and heaters: a few tens of kW
    imp1 = np.round(np.where(idle, aux_kw * INTERVAL_MIN / 60.0, 0.0), 3)

    # ---- EXP-1: monthly CSV, naive local time, timestamps at the interval end.
    gap_from = grid.index_of(*GAP_START)
    gap_to = gap_from + GAP_DAYS * 24 * 60 // INTERVAL_MIN
    dup_from = grid.index_of(*DUP_HOUR)
    dup_rows = 60 // INTERVAL_MIN
    order = np.arange(n)
    order = np.concatenate((order[:gap_from], order[gap_to:]))
    cut = int(np.searchsorted(order, dup_from + dup_rows))
    order = np.concatenate((order[:cut], np.arange(dup_from, dup_from + dup_rows), order[cut:]))
    exp1_ends = _fmt_local_naive((grid.local + dt).tz_localize(None))
    exp1_frame = pd.DataFrame({"end_time_local": np.asarray(exp1_ends)[order], "export_kwh": exp1[order]})
    exp1_month = month[order]
    for m in range(1, 13):
        _write_csv(out_dir / "data" / "EXP-1" / f"EXP-1_{year}-{m:02d}.csv", exp1_frame[exp1_month == m])

    # ---- EXP-2: cumulative kWh register read at each interval end, quarterly Parquet, UTC.
    reg_cum = np.concatenate(([0.0], np.cumsum(exp2)))  # energy since the baseline, at each reading
    # Start the register so that it passes register_max half-way through the first producing
    # interval after the target; a year's energy is far below register_max, so that is the only
    # rollover.
    k = grid.index_of(*ROLLOVER_TARGET) + 12 * 60 // INTERVAL_MIN  # around local noon
    k += int(np.argmax(exp2[k:] > 1.0))
    initial = round(REGISTER_MAX_KWH - reg_cum[k] - 0.5 * exp2[k], 2)
    register = np.round(np.mod(initial + reg_cum, REGISTER_MAX_KWH), 2)
    rollovers = np.flatnonzero(np.diff(register) < 0)
    if len(rollovers) != 1:  # guards the constants above, not user input
        raise RuntimeError(f"demo generator: expected one EXP-2 rollover, got {len(rollovers)}")
    reading_utc = pd.DatetimeIndex(grid.start_utc + dt * np.arange(n + 1)).as_unit("us")
    reading_quarter = np.concatenate(([1], quarter))  # the baseline reading at the period start goes with Q1
    for q in range(1, 5):
        sel = reading_quarter == q
        table = pa.table(
            {
                "timestamp": pa.array(reading_utc[sel].tz_localize(None).to_numpy(), type=pa.timestamp("us", tz="UTC")),
                "register_kwh": pa.array(register[sel], type=pa.float64()),
            }
        )
        path = out_dir / "data" / "EXP-2" / f"EXP-2_{year}-Q{q}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
    exp2_delta = np.diff(register)
    exp2_delta = np.where(exp2_delta < 0, exp2_delta + REGISTER_MAX_KWH, exp2_delta)

    # ---- IMP-1: quarterly CSV, local time with explicit offset, timestamps at the interval start.
    imp_frame = pd.DataFrame({"timestamp": np.asarray(_fmt_offset(grid.local)), "value": imp1})
    for q in range(1, 5):
        _write_csv(out_dir / "data" / "IMP-1" / f"IMP-1_{year}-Q{q}.csv", imp_frame[quarter == q])

    # ---- invoices: monthly sales invoices of electricity exported (gross export, EXP-1 + EXP-2 as
    # the meters delivered it), in MWh. Imports are billed separately and are not part of them.
    present = np.ones(n, dtype=bool)
    present[gap_from:gap_to] = False
    net_kwh = np.where(present, exp1, 0.0) + exp2_delta
    monthly = np.bincount(month - 1, weights=net_kwh, minlength=12) / 1000.0
    factor = 1.0 + rng.uniform(-INVOICE_NOISE, INVOICE_NOISE, 12)
    factor[INVOICE_SHORT_MONTH - 1] = 1.0 - INVOICE_SHORTFALL + rng.uniform(-INVOICE_NOISE, INVOICE_NOISE)
    inv_rows = []
    for m in range(1, 13):
        last = calendar.monthrange(year, m)[1]
        inv_rows.append((f"INV-{year}-{m:02d}", f"{year}-{m:02d}-01", f"{year}-{m:02d}-{last:02d}", round(float(monthly[m - 1] * factor[m - 1]), 3)))
    invoices = pd.DataFrame(inv_rows, columns=["invoice_no", "period_start", "period_end", "energy"])
    _write_csv(out_dir / "invoices.csv", invoices)

    # ---- calibrations: EXP-2 has a hole of CAL_LAPSE_DAYS days.
    lapse_from = date(year, *CAL_LAPSE_FROM)
    lapse_to = lapse_from + timedelta(days=CAL_LAPSE_DAYS - 1)
    cal_exp1 = [(date(year - 1, 11, 15), date(year + 1, 11, 14), f"TNCAL/{year - 1}/EM/0412")]
    cal_exp2 = [
        (date(year - 1, 7, 4), lapse_from - timedelta(days=1), f"TNCAL/{year - 1}/EM/0187"),
        (lapse_to + timedelta(days=1), date(year + 1, 7, 10), f"TNCAL/{year}/EM/0233"),
    ]
    cal_imp1 = [(date(year - 1, 9, 1), date(year + 1, 8, 31), f"TNCAL/{year - 1}/EM/0301")]

    annual_cf = float(cf.mean())
    roll_before, roll_after = reading_utc[rollovers[0]], reading_utc[rollovers[0] + 1]
    dup_local = grid.local[dup_from]
    gap_local = grid.local[gap_from]
    faults = [
        f"EXP-1 gap: no rows for {GAP_DAYS} days, intervals starting {gap_local:%Y-%m-%d %H:%M} to "
        f"{grid.local[gap_to - 1]:%Y-%m-%d %H:%M} local ({gap_to - gap_from} rows missing; data logger outage, "
        f"file EXP-1_{year}-{GAP_START[0]:02d}.csv).",
        f"EXP-1 duplicated hour: the {dup_rows} rows of the hour starting {dup_local:%Y-%m-%d %H:%M} local appear twice "
        f"with the same values (file EXP-1_{year}-{DUP_HOUR[0]:02d}.csv).",
        f"EXP-2 calibration lapse: no valid calibration from {lapse_from} to {lapse_to} ({CAL_LAPSE_DAYS} days) "
        "between the two certificates in its calibrations list.",
        f"EXP-2 register rollover: the register passes register_max={REGISTER_MAX_KWH:.0f} kWh once, between the readings "
        f"at {roll_before:%Y-%m-%dT%H:%M}Z and {roll_after:%Y-%m-%dT%H:%M}Z.",
        f"Invoices: {calendar.month_name[INVOICE_SHORT_MONTH]} {year} is invoiced about {INVOICE_SHORTFALL:.0%} below the "
        f"metered export; every other month agrees within {INVOICE_NOISE:.2%}.",
    ]
    readme = "\n".join(
        [
            f"Sample project {PROJECT_ID} (synthetic data), generated by mrv.sample.generate_demo_project(seed={seed}, year={year}).",
            "",
            f"A {CAPACITY_MW:.0f} MW wind farm (20 x 2.5 MW) near Aralvaimozhi, Tamil Nadu, India. One year of 15-minute data,",
            f"{year}-01-01 to {year}-12-31 in {TIMEZONE}. Annual capacity factor of the generated wind: {annual_cf:.1%}.",
            "",
            "Meters",
            f"  EXP-1  export feeder A ({SHARE_EXP1:.0%} of the turbines), interval kWh, monthly CSV (data/EXP-1/),",
            "         naive local time, timestamp = END of the interval, accuracy class 0.2",
            f"  EXP-2  export feeder B ({1 - SHARE_EXP1:.0%} of the turbines), cumulative kWh register, quarterly Parquet",
            "         (data/EXP-2/), UTC timestamps of each reading (= interval end), accuracy class 0.5",
            "  IMP-1  import: auxiliary consumption while the turbines idle (25-40 kW), interval kWh, quarterly CSV",
            "         (data/IMP-1/), local time with explicit +05:30 offset, timestamp = START of the interval, class 0.5",
            "  invoices.csv  monthly sales invoices of exported electricity (EXP-1 + EXP-2), MWh",
            "",
            "Injected faults",
            *(f"  - {f}" for f in faults),
            "",
            "The invoices were computed from the meter data as delivered (the EXP-1 gap is missing from both), so the only",
            "month where they disagree with the meters is the one above.",
            "The methodology parameters in project.yaml are placeholders, not published grid emission factors.",
            "",
        ]
    )
    (out_dir / "README.txt").write_text(readme, encoding="utf-8")

    d = 0.02  # about 2 km each way
    corners = [(-d, -d), (d, -d), (d, d), (-d, d), (-d, -d)]
    ring = [[round(SITE_LON + dx, 4), round(SITE_LAT + dy, 4)] for dx, dy in corners]
    params = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in DEMO_PARAMETERS.items())
    fault_comments = "\n".join(f"#   - {f}" for f in faults)
    yaml_text = f"""# Sample project (synthetic data) written by mrv.sample.generate_demo_project(seed={seed}, year={year}).
# See README.txt next to this file. Injected faults:
{fault_comments}
project: {{id: {PROJECT_ID}, name: "Demo wind farm, Tamil Nadu (synthetic data)", type: wind}}
methodology: "CDM:ACM0002:22.0"
boundary:
  country: IN
  geometry: {{type: Polygon, coordinates: [{json.dumps(ring)}]}}
monitoring_period: {{start: {year}-01-01, end: {year}-12-31, timezone: {TIMEZONE}}}
installed_capacity: {{value: {CAPACITY_MW:g}, unit: MW}}
data_sources:
  meters:
    - id: EXP-1
      serial: "EM-22A-104173"
      direction: export
      accuracy_class: 0.2
      files: "data/EXP-1/EXP-1_{year}-*.csv"
      reading: interval
      unit: kWh
      timezone: {TIMEZONE}
      interval_minutes: {INTERVAL_MIN}
      timestamp_label: end
      timestamp_column: end_time_local
      value_column: export_kwh
      calibrations:
{_calibration_yaml(cal_exp1)}
    - id: EXP-2
      serial: "EM-22B-104188"
      direction: export
      accuracy_class: 0.5
      files: "data/EXP-2/EXP-2_{year}-Q*.parquet"
      reading: cumulative
      unit: kWh
      register_max: {REGISTER_MAX_KWH:.0f}
      timezone: UTC
      interval_minutes: {INTERVAL_MIN}
      timestamp_label: end      # each timestamp is the instant of a register reading
      timestamp_column: timestamp
      value_column: register_kwh
      calibrations:             # {CAL_LAPSE_DAYS}-day lapse: {lapse_from} to {lapse_to}
{_calibration_yaml(cal_exp2)}
    - id: IMP-1
      serial: "EM-22X-104201"
      direction: import
      accuracy_class: 0.5
      files: "data/IMP-1/IMP-1_{year}-Q*.csv"
      reading: interval
      unit: kWh
      timezone: {TIMEZONE}
      interval_minutes: {INTERVAL_MIN}
      timestamp_label: start
      calibrations:
{_calibration_yaml(cal_imp1)}
  cross_checks:
    - {{kind: invoices, file: invoices.csv, direction: export, unit: MWh}}
parameters:
{params}
registry: {{name: demo-registry}}
"""
    project = out_dir / "project.yaml"
    project.write_text(yaml_text, encoding="utf-8")
    return project
