"""A seeded, realistic sample landfill gas project: one enclosed flare and one gas engine, minute data.

:func:`generate_landfill_project` writes ``project.yaml`` and two Parquet files under ``data/``
(``flare.parquet``: the flare skid; ``engine.parquet``: the gas engine). Everything is synthetic
and deterministic (same seed and days -> byte-identical files). Instruments (tags as on a P&ID):

=========  ==========  ===========================================  ==============================
tag        quantity    what                                         file column (unit in file)
=========  ==========  ===========================================  ==============================
FT-101     V_t_wb      LFG flow to the flare, wet, actual T/P        flare: flow_m3h (m3/h)
TT-101     T_t         gas temperature at FT-101                     flare: gas_temp_c (degC)
PT-101     P_t         absolute gas pressure at FT-101               flare: gas_press_kpa (kPa)
AT-101     v_CH4_t_wb  methane fraction, common header (shared)      flare: ch4_pct (percent)
TE-201     T_EG        flare exhaust gas temperature                 flare: exhaust_temp_c (degC)
BS-201     flame       flame detector (1 = flame)                    flare: flame (dimensionless)
FT-301     V_t_wb      LFG flow to the engine, at reference cond.    engine: flow_nm3h (m3/h)
JT-301     EG_PJ_t     electricity generated in the minute           engine: power_kwh (kWh)
=========  ==========  ===========================================  ==============================

Faults (placed from the seed, away from each other):

* flare outages: three events of 2-8 h with the flame off; the blower keeps running for the first
  10 minutes of each (methane sent, no flame) and then the flow stops;
* a low exhaust temperature episode: 6 h at 430-480 °C with the flame on (TOOL06 → η = 0);
* a few missing minutes: 40 single minutes with no row at all in ``flare.parquet``, and 25
  minutes with an empty methane reading;
* AT-101 (the analyser) has a lapsed calibration window of 10 days between two certificates.

The LFG is ~50 % CH4 with a slow drift and noise; the engine (~1 MWe) takes ~480 Nm³/h while
running and is down for maintenance one day a month; the rest goes to the flare (~700 m³/h).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["LANDFILL_PARAMETERS", "PROJECT_ID", "generate_landfill_project"]

PROJECT_ID = "DEMO-LFG-BR-001"
SITE_LON, SITE_LAT = -46.79, -23.47  # a landfill on the outskirts of São Paulo (illustrative)

# Methodology parameters written into the project file (value, unit, source).
LANDFILL_PARAMETERS: dict[str, dict[str, Any]] = {
    "swds_management_changed": {"value": False, "source": "project design: no change of SWDS management to increase methane"},
    "gwp_program": {"value": "CDM", "source": "CDM project activity"},
    "flare_type": {"value": "enclosed", "source": "flare data sheet FL-1 (enclosed ground flare)"},
    "flare_efficiency_option": {"value": "default", "source": "monitoring plan: TOOL06 Option A"},
    "low_height_flare": {"value": False, "source": "flare data sheet FL-1: stack height 12 m (not a low height flare)"},
    "V_t_max": {"value": 3000, "unit": "m3/h", "source": "flow meter data sheets FT-101/FT-301: measuring range 0-3000 m3/h"},
    "OX_top_layer": {"value": 0.1, "unit": "dimensionless", "source": "ACM0001 v19.0 default"},
    "AF": {"value": 0.0, "unit": "dimensionless", "source": "no regulatory or contractual requirement to destroy LFG (synthetic sample)"},
    "EF_grid_y": {"value": 0.0817, "unit": "tCO2e/MWh", "source": "synthetic placeholder (not a published grid emission factor)"},
    "EC_PJ_y": {"value": 0.0, "unit": "MWh", "source": "synthetic placeholder; blowers on the engine's own supply"},
    "PE_FC_y": {"value": 0.0, "unit": "tCO2e", "source": "no fossil fuel used on site"},
}

FLARE_FLOW_MIN, FLARE_FLOW_MAX = 150.0, 1500.0  # manufacturer's operating range [Nm³/h]


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) noise x_k = phi x_(k-1) + sqrt(1 - phi^2) e_k, vectorised in blocks.

    Within a block, x_k = phi^k (x_0' + Σ_(j≤k) phi^(-j) s_j) exactly; blocks are short enough that
    phi^(-j) stays well inside float range.
    """
    e = rng.standard_normal(n) * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    block = 256
    powers = phi ** np.arange(block)
    inv = 1.0 / powers
    prev = 0.0
    for i in range(0, n, block):
        seg = e[i:i + block]
        k = len(seg)
        x = powers[:k] * (prev * phi + np.cumsum(seg * inv[:k]))
        out[i:i + k] = x
        prev = x[-1]
    return out


def generate_landfill_project(out_dir: Path, *, seed: int = 11, days: int = 365, start: date = date(2023, 1, 1)) -> Path:
    """Write the sample project into ``out_dir`` and return the path of its ``project.yaml``."""
    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    if days < 2:
        raise ValueError("days must be at least 2")
    rng = np.random.default_rng(seed)
    n = days * 1440
    ts = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq="min")
    minute_of_day = np.arange(n) % 1440
    day = np.arange(n) // 1440

    ch4 = 0.50 + 0.02 * np.sin(2 * np.pi * day / 365.0) + 0.006 * _ar1(rng, n, 0.995) + 0.002 * rng.standard_normal(n)
    ch4 = np.clip(ch4, 0.40, 0.60)
    total_n = 1180 + 60 * _ar1(rng, n, 0.999) + 30 * np.sin(2 * np.pi * minute_of_day / 1440.0)  # Nm³/h collected

    # Engine: runs except one maintenance day a month; takes ~480 Nm³/h.
    maint = np.zeros(n, dtype=bool)
    for d0 in range(14, days, 30):
        maint[d0 * 1440:(d0 + 1) * 1440] = True
    engine_n = np.where(maint, 0.0, 480 + 10 * rng.standard_normal(n))
    eta_el = 0.38
    power_kwh = engine_n / 60.0 * ch4 * 9.97 * eta_el  # 9.97 kWh/Nm³ CH4 (LHV)
    power_kwh = np.where(maint, 0.0, power_kwh)

    flare_n = np.clip(total_n - engine_n, 0.0, None)
    gas_temp_c = 32 + 4 * np.sin(2 * np.pi * (minute_of_day - 600) / 1440.0) + 0.3 * rng.standard_normal(n)
    gas_press_kpa = 104.0 + 0.4 * _ar1(rng, n, 0.99)
    flow_actual = flare_n * (101.325 / gas_press_kpa) * ((gas_temp_c + 273.15) / 273.15)
    exhaust = 900 + 40 * _ar1(rng, n, 0.99) + 5 * rng.standard_normal(n)
    flame = np.ones(n)

    # Fault placement (minute indices), spread over the period.
    def pick(lo_frac: float, hi_frac: float) -> int:
        return int(rng.integers(int(n * lo_frac), int(n * hi_frac)))

    outages = [(pick(0.05, 0.15), 2 * 60), (pick(0.40, 0.50), 8 * 60), (pick(0.70, 0.80), 4 * 60)]
    for s, length in outages:
        e = min(s + length, n)
        flame[s:e] = 0.0
        exhaust[s:e] = np.linspace(600, 60, e - s)
        stop = min(s + 10, e)  # blower runs 10 minutes before it trips
        flow_actual[stop:e] = 0.0
    low_s = pick(0.25, 0.30)
    low_e = min(low_s + 6 * 60, n)
    exhaust[low_s:low_e] = rng.uniform(430, 480, low_e - low_s)

    ch4_pct = ch4 * 100.0
    ch4_pct_col = ch4_pct.copy()
    blank = rng.choice(n, size=min(25, n // 100), replace=False)
    ch4_pct_col[blank] = np.nan
    flare = pd.DataFrame({
        "timestamp": ts,
        "flow_m3h": np.round(flow_actual, 3),
        "gas_temp_c": np.round(gas_temp_c, 2),
        "gas_press_kpa": np.round(gas_press_kpa, 3),
        "ch4_pct": np.round(ch4_pct_col, 3),
        "exhaust_temp_c": np.round(exhaust, 1),
        "flame": flame,
    })
    drop = rng.choice(n, size=min(40, n // 100), replace=False)
    flare = flare.drop(index=drop).reset_index(drop=True)
    engine = pd.DataFrame({"timestamp": ts, "flow_nm3h": np.round(engine_n, 3), "power_kwh": np.round(power_kwh, 4)})
    pq.write_table(pa.Table.from_pandas(flare, preserve_index=False), out_dir / "data" / "flare.parquet", compression="zstd")
    pq.write_table(pa.Table.from_pandas(engine, preserve_index=False), out_dir / "data" / "engine.parquet", compression="zstd")

    end = start + timedelta(days=days - 1)
    lapse_from = start + timedelta(days=max(1, days // 2))
    lapse_to = lapse_from + timedelta(days=min(10, max(1, days // 4)))
    cal_all = f"[{{valid_from: {start - timedelta(days=30)}, valid_to: {end + timedelta(days=30)}, certificate: CAL-{{tag}}-1}}]"
    cal_at = (f"[{{valid_from: {start - timedelta(days=30)}, valid_to: {lapse_from - timedelta(days=1)}, certificate: CAL-AT-101-1}}, "
              f"{{valid_from: {lapse_to}, valid_to: {end + timedelta(days=30)}, certificate: CAL-AT-101-2}}]")

    def inst(tag: str, quantity: str, unit: str, file: str, column: str, accuracy: float | None, attrs: dict[str, Any],
             cal: str | None = None) -> str:
        acc = f"\n      accuracy: {accuracy}" if accuracy is not None else ""
        attr = ", ".join(f"{k}: {v}" for k, v in attrs.items())
        return (f"    - id: {tag}\n      quantity: {quantity}\n      unit: {unit}\n      files: \"data/{file}\"\n"
                f"      column: {column}\n      timestamp_column: timestamp\n      timezone: UTC\n      timestamp_label: start\n"
                f"      interval_minutes: 1{acc}\n      calibrations: {cal or cal_all.replace('{tag}', tag)}\n"
                f"      attributes: {{{attr}}}\n")

    instruments = "".join([
        inst("FT-101", "V_t_wb", "m3/h", "flare.parquet", "flow_m3h", 1.0,
             {"stream": "flare", "conditions": "actual", "flow_min_m3h": FLARE_FLOW_MIN, "flow_max_m3h": FLARE_FLOW_MAX}),
        inst("TT-101", "T_t", "degC", "flare.parquet", "gas_temp_c", 0.5, {"stream": "flare"}),
        inst("PT-101", "P_t", "kPa", "flare.parquet", "gas_press_kpa", 0.25, {"stream": "flare"}),
        inst("AT-101", "v_CH4_t_wb", "percent", "flare.parquet", "ch4_pct", 2.0, {"stream": "shared"}, cal_at),
        inst("TE-201", "T_EG", "degC", "flare.parquet", "exhaust_temp_c", 0.75, {"stream": "flare", "T_EG_min_degC": 500}),
        inst("BS-201", "flame", "dimensionless", "flare.parquet", "flame", None, {"stream": "flare"}),
        inst("FT-301", "V_t_wb", "m3/h", "engine.parquet", "flow_nm3h", 1.0, {"stream": "engine", "conditions": "reference"}),
        inst("JT-301", "EG_PJ_t", "kWh", "engine.parquet", "power_kwh", 0.5, {"stream": "engine"}),
    ])
    params = "".join(
        f"  {k}: {{value: {str(v['value']).lower() if isinstance(v['value'], bool) else v['value']}"
        + (f", unit: {v['unit']}" if "unit" in v else "") + f", source: \"{v['source']}\"}}\n"
        for k, v in LANDFILL_PARAMETERS.items()
    )
    d = 0.004
    ring = [[round(x, 4), round(y, 4)] for x, y in ((SITE_LON - d, SITE_LAT - d), (SITE_LON + d, SITE_LAT - d),
            (SITE_LON + d, SITE_LAT + d), (SITE_LON - d, SITE_LAT + d), (SITE_LON - d, SITE_LAT - d))]
    yaml_text = f"""# Sample landfill gas project (synthetic data) written by mrv.sample.landfill.generate_landfill_project(seed={seed}, days={days}).
project: {{id: {PROJECT_ID}, name: Demo landfill gas flaring and power, type: landfill_gas}}
methodology: "CDM:ACM0001:19.0"
boundary: {{country: BR, geometry: {{type: Polygon, coordinates: [{ring}]}}}}
monitoring_period: {{start: {start}, end: {end}, timezone: UTC}}
installed_capacity: {{value: 1.0, unit: MW}}
data_sources:
  instruments:
{instruments}parameters:
{params}registry: {{name: demo-registry}}
"""
    project = out_dir / "project.yaml"
    project.write_text(yaml_text, encoding="utf-8")
    return project
