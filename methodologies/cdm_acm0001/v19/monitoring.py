"""ACM0001 v19.0 aggregation: validated instrument readings -> methane sent, flared and used [tCH4].

Input: the long tidy frame ``instrument_id, ts, quantity, value, unit[, calibration_valid, ...]``
(docs/internal-interfaces.md, "Generic monitored data"), values already in the units of
:data:`INSTRUMENT_QUANTITIES`, plus ``sources["instruments"]`` (the project file's instrument list).

Everything is vectorised: each instrument becomes one float array over the minutes of the period
(525,600 for a year); there is no per-row Python.

Steps
-----
Per instrument (in this order; each treatment is recorded):

1. rows outside ``[start, end)``, without a finite value, off the instrument's interval grid, or
   physically impossible are not used;
2. rows taken while the calibration had lapsed (``calibration_valid`` false) get the instrument's
   maximum permissible error (``accuracy`` [%]) in the conservative direction (flow, methane
   fraction, pressure, exhaust temperature, electricity: lower; gas temperature: higher); an
   instrument without a stated accuracy, and any on/off signal, is not used for those rows;
3. a slot delivered twice keeps its conservative value;
4. each reading covers the minutes of its interval (``interval_minutes``).

Per stream (``attributes.stream``: ``flare``, ``engine``; ``shared`` instruments, e.g. one analyser
on the common header, serve both):

5. TOOL08: the flow is normalised to reference conditions (unless ``attributes.conditions`` is
   ``reference``), then F_CH4,m [kg] = V_n,m [m³/h] / 60 × v_CH4,m × ρ_CH4,n; a minute missing the
   flow or the methane fraction contributes no methane; missing T/P use the period's worst case;
6. flare: each minute is classified for TOOL06 — flame detected (detector reads 1), and for an
   enclosed flare the operating conditions (exhaust temperature ≥ max(500 °C, the thermocouple's
   ``T_EG_min_degC``), normalised flow within the flow meter's ``flow_min_m3h``..``flow_max_m3h``,
   and no flame detector reporting "no flame"). Because η_flare,m takes one value per class (it
   depends on the flare type and option, which are parameters), the calculator gets the methane
   per class and applies :func:`methodologies.cdm_tool06.eta_flare_m` to it:
   Σ_m F_m η_m = η_class × Σ_{m in class} F_m, exactly;
7. engine: methane sent to the engine counts only in minutes with electricity generated > 0;
   EG_PJ,y is the sum of the generation meter's intervals (a missing interval contributes 0).

Returned monitored values (see :data:`AGGREGATED`): the period as UTC epoch seconds (for the dated
GWP), methane sums [tCH4], minute counts and EG_PJ_y [MWh].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from methodologies.cdm_acm0001.v19 import clauses
from methodologies.cdm_tool06 import v4 as tool06
from mrv.errors import ApplicabilityError, MethodologyError
from mrv.methodology import MonitoringInput, Trace

DATASET = "flare_data"

# Quantity symbol -> unit the equations use (TOOL08 / TOOL06 / TOOL05 symbols).
INSTRUMENT_QUANTITIES: dict[str, str] = {
    "V_t_wb": "m3/h",  # volumetric LFG flow, wet basis (TOOL08 V_t,wb); at measured T/P unless conditions: reference
    "V_t_db": "m3/h",  # volumetric LFG flow, dry basis (TOOL08 V_t,db)
    "v_CH4_t_wb": "dimensionless",  # volumetric fraction of methane, wet basis (TOOL08 v_CH4,t,wb)
    "v_CH4_t_db": "dimensionless",  # volumetric fraction of methane, dry basis (TOOL08 v_CH4,t,db)
    "T_t": "K",  # gas temperature at the flow meter (TOOL08 T_t)
    "P_t": "Pa",  # absolute gas pressure at the flow meter (TOOL08 P_t)
    "T_EG": "degC",  # temperature of the flare exhaust gas (TOOL06)
    "flame": "dimensionless",  # flame detection, 1 = flame, 0 = no flame (TOOL06)
    "EG_PJ_t": "kWh",  # electricity generated with LFG in the interval (TOOL05 metering)
}

# Conservative direction of each quantity: -1 = the lower value gives lower reductions, +1 = the higher.
DIRECTION: dict[str, int] = {
    "V_t_wb": -1, "V_t_db": -1, "v_CH4_t_wb": -1, "v_CH4_t_db": -1, "T_t": +1, "P_t": -1,
    "T_EG": -1, "flame": -1, "EG_PJ_t": -1,
}
BINARY = frozenset({"flame"})
FLOW = ("V_t_wb", "V_t_db")
CH4 = ("v_CH4_t_wb", "v_CH4_t_db")
STREAMS = ("flare", "engine")
SHARED = "shared"

# TOOL08 constants
T_N = 273.15  # [K] reference temperature
P_N = 101_325.0  # [Pa] reference pressure
R_U = 8_314.472  # [Pa·m³/(kmol·K)] universal gas constant
MM_CH4 = 16.04  # [kg/kmol] molecular mass of methane
RHO_CH4_N = P_N * MM_CH4 / (R_U * T_N)  # [kg/m³] ≈ 0.7156

US_PER_MIN = 60_000_000

# Monitored values returned by aggregate (name, unit, description).
AGGREGATED: tuple[tuple[str, str, str], ...] = (
    ("period_start_s", "s", "Monitoring period start, UTC seconds since 1970-01-01 (for the dated GWP)"),
    ("period_end_s", "s", "Monitoring period end (exclusive), UTC seconds since 1970-01-01"),
    ("F_CH4_sent_flare_y", "t", "Methane sent to the flare (TOOL08), Σ_m F_CH4,RG,m"),
    ("F_CH4_flare_flame_y", "t", "Methane sent to the flare in minutes with flame detected"),
    ("F_CH4_flare_ok_y", "t", "Methane sent to the flare in minutes meeting the enclosed-flare operating conditions"),
    ("N_min_flare_flow", "dimensionless", "Minutes with methane sent to the flare"),
    ("N_min_flare_flame", "dimensionless", "Minutes with methane sent and flame detected"),
    ("N_min_flare_ok", "dimensionless", "Minutes with methane sent and enclosed-flare operating conditions met"),
    ("F_CH4_EL_y", "t", "Methane sent to the gas engine while it generated electricity (TOOL08)"),
    ("EG_PJ_y", "MWh", "Electricity generated with LFG (metered)"),
)
AGGREGATED_NAMES: tuple[str, ...] = tuple(n for n, _, _ in AGGREGATED)

REQUIRED_COLUMNS = ("instrument_id", "ts", "quantity", "value", "calibration_valid")


@dataclass(frozen=True)
class Instrument:
    id: str
    quantity: str
    stream: str
    interval_minutes: int
    accuracy: float | None  # maximum permissible error [%]
    attributes: dict[str, Any] = field(default_factory=dict)


def _instruments(raw: Any) -> dict[str, Instrument]:
    if not raw:
        raise MethodologyError(f"ACM0001: sources['instruments'] is empty; the project declares no instruments ({clauses.APPLICABILITY_ACTIVITY})")
    out: dict[str, Instrument] = {}
    for i, item in enumerate(raw):
        d = dict(item)
        iid = str(d.get("id") or "")
        if not iid:
            raise MethodologyError(f"ACM0001: instruments[{i}] has no id")
        if iid in out:
            raise MethodologyError(f"ACM0001: instrument id {iid} is declared twice")
        q = str(d.get("quantity") or "")
        if q not in INSTRUMENT_QUANTITIES:
            raise MethodologyError(f"ACM0001: instrument {iid}: unknown quantity {q!r} (known: {', '.join(INSTRUMENT_QUANTITIES)})")
        attrs = dict(d.get("attributes") or {})
        stream = str(attrs.get("stream", "flare"))
        if stream not in (*STREAMS, SHARED):
            raise ApplicabilityError(
                f"ACM0001: instrument {iid}: stream {stream!r} is not implemented (flare, engine, shared). {clauses.APPLICABILITY_USES}"
            )
        interval = d.get("interval_minutes", 1)
        if isinstance(interval, bool) or int(interval) != interval or int(interval) <= 0:
            raise MethodologyError(f"ACM0001: instrument {iid}: interval_minutes must be a positive integer, got {interval!r}")
        acc = d.get("accuracy")
        out[iid] = Instrument(iid, q, stream, int(interval), None if acc is None else float(acc), attrs)
    return out


class _Recorder:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.items: list[dict[str, Any]] = []

    def treat(self, kind: str, *, clause: str, detail: str, instrument_id: str | None = None,
              stream: str | None = None, count: int = 0, unit: str = "rows", **extra: Any) -> None:
        item = {"kind": kind, "instrument_id": instrument_id, "stream": stream, "count": int(count), "count_unit": unit,
                "clause": clause, "detail": detail, **extra}
        self.items.append(item)
        who = instrument_id or stream or "?"
        self.trace.record(f"treatment[{kind}:{who}]", int(count), unit, equation=kind, clause=clause,
                          inputs={k: v for k, v in item.items() if k not in ("kind", "clause", "detail")}, note=detail)


def _factorize(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(integer codes, -1 for missing; category labels as str) without materialising strings per row."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(dtype=np.int64), [str(c) for c in s.cat.categories]
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _utc_us(s: pd.Series) -> npt.NDArray[np.int64]:
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        raise MethodologyError(f"ACM0001: column ts must be timezone-aware (UTC), got {s.dtype}")
    return s.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


def _instrument_minutes(
    inst: Instrument, ts_us: np.ndarray, values: np.ndarray, cal: np.ndarray, start_us: int, n_min: int, rec: _Recorder
) -> tuple[np.ndarray, np.ndarray]:
    """-> (per-minute values, NaN where missing; per-slot kept values for amount quantities)."""
    q, iid = inst.quantity, inst.id
    step_us = inst.interval_minutes * US_PER_MIN
    end_us = start_us + n_min * US_PER_MIN
    v = values.astype(np.float64, copy=True)
    keep = np.ones(len(v), dtype=bool)

    outside = (ts_us < start_us) | (ts_us >= end_us)
    if outside.any():
        rec.treat("outside_period", instrument_id=iid, count=int(outside.sum()), clause=clauses.OUTSIDE_PERIOD,
                  detail="readings outside the monitoring period are not used")
    keep &= ~outside
    bad = keep & ~np.isfinite(v)
    if bad.any():
        rec.treat("non_finite_value", instrument_id=iid, count=int(bad.sum()), clause=clauses.NON_FINITE,
                  detail="readings without a finite value are treated as missing")
    keep &= ~bad
    off = keep & (((ts_us - start_us) % step_us) != 0)
    if off.any():
        rec.treat("off_grid", instrument_id=iid, count=int(off.sum()), clause=clauses.OFF_GRID,
                  detail=f"timestamps not on the {inst.interval_minutes}-minute grid anchored at the period start")
    keep &= ~off
    if q in FLOW or q == "EG_PJ_t":
        impossible = v < 0
    elif q in CH4:
        impossible = (v < 0) | (v > 1)
    elif q in ("T_t", "P_t"):
        impossible = v <= 0
    elif q in BINARY:
        impossible = ~np.isin(v, (0.0, 1.0))
    else:
        impossible = np.zeros(len(v), dtype=bool)
    impossible &= keep
    if impossible.any():
        rec.treat("out_of_range", instrument_id=iid, count=int(impossible.sum()), clause=clauses.OUT_OF_RANGE,
                  detail=f"physically impossible {q} readings treated as missing")
    keep &= ~impossible

    lapsed = keep & ~cal
    if lapsed.any():
        n = int(lapsed.sum())
        if q in BINARY or inst.accuracy is None:
            keep &= ~lapsed
            why = "an on/off signal has no error band" if q in BINARY else "no accuracy stated for the instrument"
            rec.treat("calibration_lapsed_not_used", instrument_id=iid, count=n, clause=clauses.CALIBRATION,
                      detail=f"readings taken while calibration had lapsed are not used ({why})")
        else:
            sign = DIRECTION[q]
            before = float(np.sum(v[lapsed]))
            v[lapsed] = v[lapsed] + sign * np.abs(v[lapsed]) * inst.accuracy / 100.0
            rec.treat("calibration_lapsed_mpe", instrument_id=iid, count=n, clause=clauses.CALIBRATION,
                      detail=f"maximum permissible error {inst.accuracy} % applied {'upwards' if sign > 0 else 'downwards'}",
                      accuracy_pct=inst.accuracy, sum_before=before, sum_after=float(np.sum(v[lapsed])))

    slot = (ts_us[keep] - start_us) // step_us
    val = v[keep]
    n_slots = -(-n_min // inst.interval_minutes)
    per_slot = np.full(n_slots, np.nan)
    if len(slot):
        if len(slot) > 1 and not bool(np.all(slot[1:] >= slot[:-1])):
            order = np.argsort(slot, kind="stable")
            slot, val = slot[order], val[order]
        first = np.r_[True, slot[1:] != slot[:-1]]
        if not first.all():
            # One value per slot: the conservative one (lowest, or highest for a +1 quantity).
            starts = np.flatnonzero(first)
            red = np.maximum.reduceat if DIRECTION[q] > 0 else np.minimum.reduceat
            uniq_slot = slot[starts]
            resolved = red(val, starts)
            rec.treat("duplicate_slots", instrument_id=iid, count=int((~first).sum()), clause=clauses.DUPLICATES,
                      detail="slots delivered more than once keep their conservative value")
            slot, val = uniq_slot, resolved
        per_slot[slot] = val
    minutes = np.repeat(per_slot, inst.interval_minutes)[:n_min] if inst.interval_minutes > 1 else per_slot
    return minutes, per_slot


def _one(insts: list[Instrument], quantities: tuple[str, ...] | str, stream: str) -> Instrument | None:
    qs = (quantities,) if isinstance(quantities, str) else quantities
    own = [i for i in insts if i.quantity in qs and i.stream == stream]
    shared = [i for i in insts if i.quantity in qs and i.stream == SHARED]
    pick = own or shared
    if len(pick) > 1:
        raise MethodologyError(
            f"ACM0001: stream {stream} has {len(pick)} instruments for {'/'.join(qs)} ({', '.join(i.id for i in pick)}); "
            "declare one (redundant instruments are not combined)"
        )
    return pick[0] if pick else None


def _methane_kg(
    stream: str, insts: list[Instrument], minutes: dict[str, np.ndarray], n_min: int, rec: _Recorder, trace: Trace
) -> tuple[np.ndarray, np.ndarray, Instrument]:
    """TOOL08 per minute: (F_CH4,m [kg], V_n,m [m³/h at reference conditions], flow instrument)."""
    flow = _one(insts, FLOW, stream)
    ch4 = _one(insts, CH4, stream)
    if flow is None:
        raise MethodologyError(f"ACM0001: stream {stream} has no LFG flow instrument (V_t_wb or V_t_db). {clauses.TOOL08_MASS_FLOW}")
    if ch4 is None:
        raise MethodologyError(f"ACM0001: stream {stream} has no methane analyser (v_CH4_t_wb or v_CH4_t_db). {clauses.TOOL08_MASS_FLOW}")
    if flow.quantity[-2:] != ch4.quantity[-2:]:
        raise MethodologyError(
            f"ACM0001: stream {stream}: flow {flow.id} is {flow.quantity} but the methane fraction {ch4.id} is {ch4.quantity}. "
            f"{clauses.TOOL08_BASIS}"
        )
    V = minutes[flow.id]
    conditions = str(flow.attributes.get("conditions", "actual"))
    if conditions not in ("actual", "reference"):
        raise MethodologyError(f"ACM0001: instrument {flow.id}: attributes.conditions must be 'actual' or 'reference', got {conditions!r}")
    if conditions == "actual":
        t_inst, p_inst = _one(insts, "T_t", stream), _one(insts, "P_t", stream)
        if t_inst is None or p_inst is None:
            raise MethodologyError(
                f"ACM0001: stream {stream}: flow {flow.id} is at actual conditions, so a gas temperature (T_t) and an absolute "
                f"pressure (P_t) instrument are needed. {clauses.TOOL08_NORMALISE}"
            )
        T = minutes[t_inst.id].copy()
        P = minutes[p_inst.id].copy()
        has_flow = ~np.isnan(V)
        for arr, inst, fill_fn, label in ((T, t_inst, np.nanmax, "highest"), (P, p_inst, np.nanmin, "lowest")):
            miss = np.isnan(arr) & has_flow  # only minutes whose flow needs normalising
            n_miss = int(miss.sum())
            if n_miss and not np.isnan(arr).all():
                fill = float(fill_fn(arr))
                arr[miss] = fill
                rec.treat("missing_T_P_worst_case", instrument_id=inst.id, stream=stream, count=n_miss, unit="minutes",
                          clause=clauses.MISSING_TP, detail=f"filled with the {label} value observed in the period, {fill}",
                          fill_value=fill)
            elif n_miss:
                rec.treat("missing_T_P_no_data", instrument_id=inst.id, stream=stream, count=n_miss, unit="minutes",
                          clause=clauses.MISSING_TP, detail="no valid reading in the period: the flow cannot be normalised")
        V_n = V * (P / P_N) * (T_N / T)
        trace.record(f"V_n_normalisation[{stream}]", f"{flow.id} × ({p_inst.id} / P_n) × (T_n / {t_inst.id})", "m3/h",
                     equation="V_t,n = V_t × (P_t / P_n) × (T_n / T_t)", clause=clauses.TOOL08_NORMALISE,
                     inputs={"T_n_K": T_N, "P_n_Pa": P_N})
    else:
        V_n = V
    v = minutes[ch4.id]
    miss_v = np.isnan(V_n)
    miss_c = np.isnan(v) & ~miss_v
    if miss_v.any():
        rec.treat("missing_flow", instrument_id=flow.id, stream=stream, count=int(miss_v.sum()), unit="minutes",
                  clause=clauses.MISSING_FLOW, detail="minutes without a valid (normalisable) flow: no methane counted")
    if miss_c.any():
        rec.treat("missing_CH4_fraction", instrument_id=ch4.id, stream=stream, count=int(miss_c.sum()), unit="minutes",
                  clause=clauses.MISSING_CH4, detail="minutes with flow but without a valid methane fraction: no methane counted")
    F = V_n / 60.0 * v * RHO_CH4_N  # [kg] in the minute
    F = np.where(np.isnan(F), 0.0, F)
    return F, V_n, flow


def aggregate_flare_data(data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Validated instrument readings -> monitored values (:data:`AGGREGATED`) and the treatments applied."""
    start, end = pd.Timestamp(data.start), pd.Timestamp(data.end)
    if start.tzinfo is None or end.tzinfo is None:
        raise MethodologyError("ACM0001: period bounds must be timezone-aware (UTC)")
    start, end = start.tz_convert("UTC"), end.tz_convert("UTC")
    if end <= start:
        raise MethodologyError(f"ACM0001: empty monitoring period [{start}, {end})")
    span_us = (end - start) // pd.Timedelta(microseconds=1)
    if span_us % US_PER_MIN:
        raise MethodologyError("ACM0001: the monitoring period must be a whole number of minutes")
    n_min = int(span_us // US_PER_MIN)
    start_us = int(start.value // 1000)

    insts = _instruments(data.sources.get("instruments"))
    df = data.datasets.get(DATASET)
    if df is None:
        raise MethodologyError(f"ACM0001: dataset {DATASET!r} is missing from the monitoring input")
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing_cols:
        raise MethodologyError(f"ACM0001: {DATASET} lacks column(s) {', '.join(missing_cols)} (validated frames carry calibration_valid)")
    rec = _Recorder(trace)

    id_codes, id_cats = _factorize(df["instrument_id"])
    if (id_codes < 0).any():
        raise MethodologyError(f"ACM0001: {int((id_codes < 0).sum())} reading(s) name no instrument")
    undeclared = sorted(set(id_cats) - set(insts))
    if undeclared:
        raise MethodologyError(f"ACM0001: readings from instrument(s) {', '.join(undeclared)} not in the project's instrument list")
    q_codes, q_cats = _factorize(df["quantity"])
    ts_all = _utc_us(df["ts"])
    val_all = df["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    cal_all = df["calibration_valid"].to_numpy(dtype=bool, na_value=False)
    # Row positions per instrument: one stable sort of the codes (rows keep their order within one).
    grouped = len(id_codes) < 2 or bool(np.all(id_codes[1:] >= id_codes[:-1]))
    order = np.arange(len(id_codes)) if grouped else np.argsort(id_codes, kind="stable")
    bounds = np.searchsorted(id_codes[order], np.arange(len(id_cats) + 1))
    positions = {cat: order[bounds[j]:bounds[j + 1]] for j, cat in enumerate(id_cats)}

    minutes: dict[str, np.ndarray] = {}
    slots: dict[str, np.ndarray] = {}
    empty = np.zeros(0, dtype=np.int64)
    for iid, inst in insts.items():
        pos = positions.get(iid, empty)
        if len(pos):
            wrong = {q_cats[c] if c >= 0 else "<missing>" for c in np.unique(q_codes[pos])} - {inst.quantity}
            if wrong:
                raise MethodologyError(f"ACM0001: instrument {iid} is declared as {inst.quantity} but has readings of {', '.join(sorted(wrong))}")
        minutes[iid], slots[iid] = _instrument_minutes(inst, ts_all[pos], val_all[pos], cal_all[pos], start_us, n_min, rec)
        n_valid = int(np.count_nonzero(~np.isnan(slots[iid])))
        trace.record(f"slots_valid[{iid}]", n_valid, "intervals", equation="valid readings after treatments",
                     clause=clauses.TOOL08_MASS_FLOW if inst.quantity not in ("T_EG", "flame", "EG_PJ_t") else tool06.CLAUSE_PE,
                     inputs={"quantity": inst.quantity, "stream": inst.stream, "interval_minutes": inst.interval_minutes,
                             "expected": len(slots[iid])})

    streams = {i.stream for i in insts.values()} - {SHARED}
    all_insts = list(insts.values())
    out: dict[str, float] = {
        "period_start_s": float(start.value // 1_000_000_000),
        "period_end_s": float(end.value // 1_000_000_000),
    }
    trace.record("rho_CH4_n", RHO_CH4_N, "kg/m3", equation="P_n × MM_CH4 / (R_u × T_n)", clause=clauses.TOOL08_DENSITY,
                 inputs={"P_n_Pa": P_N, "MM_CH4_kg_per_kmol": MM_CH4, "R_u_Pa_m3_per_kmol_K": R_U, "T_n_K": T_N})

    # --- flare ----------------------------------------------------------------------------------
    zero = dict.fromkeys(("F_CH4_sent_flare_y", "F_CH4_flare_flame_y", "F_CH4_flare_ok_y",
                          "N_min_flare_flow", "N_min_flare_flame", "N_min_flare_ok"), 0.0)
    out.update(zero)
    if "flare" in streams:
        F, V_n, flow = _methane_kg("flare", all_insts, minutes, n_min, rec, trace)
        sent = F > 0
        det = _one(all_insts, "flame", "flare")
        if det is not None:
            flame_on = minutes[det.id] == 1.0
            n_no = int(np.count_nonzero(sent & ~flame_on))
            if n_no:
                rec.treat("no_flame", instrument_id=det.id, stream="flare", count=n_no, unit="minutes",
                          clause=clauses.MISSING_FLAME,
                          detail="minutes with methane sent but no flame detected (0 or no signal): η_flare,m = 0")
        else:
            flame_on = np.zeros(n_min, dtype=bool)
            rec.treat("no_flame_detector", stream="flare", count=int(np.count_nonzero(sent)), unit="minutes",
                      clause=clauses.MISSING_FLAME,
                      detail="no flame detector declared: an open flare cannot be shown to operate (an enclosed flare "
                             "relies on the exhaust temperature)")
        th = _one(all_insts, "T_EG", "flare")
        if th is not None:
            t_min = max(tool06.T_EG_MIN_DEGC, float(th.attributes.get("T_EG_min_degC", tool06.T_EG_MIN_DEGC)))
            T_EG = minutes[th.id]
            temp_ok = T_EG >= t_min  # NaN -> False
            n_missing = int(np.count_nonzero(sent & np.isnan(T_EG)))
            n_low = int(np.count_nonzero(sent & (T_EG < t_min)))
            if n_missing:
                rec.treat("missing_T_EG", instrument_id=th.id, stream="flare", count=n_missing, unit="minutes",
                          clause=clauses.MISSING_T_EG, detail="minutes with methane sent but no valid exhaust temperature")
            if n_low:
                rec.treat("low_T_EG", instrument_id=th.id, stream="flare", count=n_low, unit="minutes",
                          clause=tool06.CLAUSE_ENCLOSED_DEFAULT,
                          detail=f"minutes with methane sent and exhaust temperature below {t_min} °C: η_flare,m = 0 (enclosed flare)",
                          threshold_degC=t_min)
        else:
            temp_ok = np.zeros(n_min, dtype=bool)
            t_min = tool06.T_EG_MIN_DEGC
        lo, hi = flow.attributes.get("flow_min_m3h"), flow.attributes.get("flow_max_m3h")
        if lo is None and hi is None:
            spec_ok = np.zeros(n_min, dtype=bool)
            rec.treat("no_manufacturer_specification", instrument_id=flow.id, stream="flare", count=int(np.count_nonzero(sent)),
                      unit="minutes", clause=clauses.SPEC,
                      detail="the flare flow meter states no manufacturer's operating range (flow_min_m3h/flow_max_m3h)")
        else:
            lo_v = float(lo) if lo is not None else 0.0
            hi_v = float(hi) if hi is not None else np.inf
            spec_ok = (V_n >= lo_v) & (V_n <= hi_v)
            n_out = int(np.count_nonzero(sent & ~spec_ok))
            if n_out:
                rec.treat("outside_manufacturer_specification", instrument_id=flow.id, stream="flare", count=n_out, unit="minutes",
                          clause=clauses.SPEC, detail=f"normalised flow outside {lo_v}..{hi_v} m3/h: η_flare,m = 0 (enclosed flare)")
        flame_cond = flame_on if det is not None else np.ones(n_min, dtype=bool)
        ok = temp_ok & spec_ok & flame_cond
        out["F_CH4_sent_flare_y"] = float(F.sum()) / 1000.0
        out["F_CH4_flare_flame_y"] = float(F[flame_on].sum()) / 1000.0
        out["F_CH4_flare_ok_y"] = float(F[ok].sum()) / 1000.0
        out["N_min_flare_flow"] = float(np.count_nonzero(sent))
        out["N_min_flare_flame"] = float(np.count_nonzero(sent & flame_on))
        out["N_min_flare_ok"] = float(np.count_nonzero(sent & ok))
        trace.record("F_CH4_sent_flare_y", out["F_CH4_sent_flare_y"], "t", equation="Σ_m V_n,m / 60 × v_CH4,m × ρ_CH4,n / 1000",
                     clause=clauses.TOOL08_MASS_FLOW, inputs={"minutes": n_min, "minutes_with_methane": out["N_min_flare_flow"]})
        trace.record("F_CH4_flare_flame_y", out["F_CH4_flare_flame_y"], "t", equation="Σ_{m: flame detected} F_CH4,RG,m / 1000",
                     clause=tool06.CLAUSE_OPEN, inputs={"minutes": out["N_min_flare_flame"], "flame_detector": det.id if det else None})
        trace.record("F_CH4_flare_ok_y", out["F_CH4_flare_ok_y"], "t",
                     equation=f"Σ_{{m: T_EG ≥ {t_min} °C, flow within specification, flame not reported off}} F_CH4,RG,m / 1000",
                     clause=tool06.CLAUSE_ENCLOSED_DEFAULT, inputs={"minutes": out["N_min_flare_ok"], "T_EG_threshold_degC": t_min},
                     note=tool06.CLAUSE_SUB_MINUTE)

    # --- engine ---------------------------------------------------------------------------------
    out["F_CH4_EL_y"] = 0.0
    out["EG_PJ_y"] = 0.0
    if "engine" in streams:
        eg = _one(all_insts, "EG_PJ_t", "engine")
        flow_e = _one(all_insts, FLOW, "engine")
        if eg is not None:
            eg_slots = slots[eg.id]
            n_miss = int(np.count_nonzero(np.isnan(eg_slots)))
            if n_miss:
                rec.treat("missing_EG_intervals", instrument_id=eg.id, stream="engine", count=n_miss, unit="intervals",
                          clause=clauses.EG, detail="missing generation intervals contribute 0 kWh")
            out["EG_PJ_y"] = float(np.nansum(eg_slots)) / 1000.0
            trace.record("EG_PJ_y", out["EG_PJ_y"], "MWh", equation=f"Σ {eg.id} interval energy / 1000", clause=clauses.EG,
                         inputs={"intervals": len(eg_slots), "missing": n_miss})
        if flow_e is not None:
            F_e, _, _ = _methane_kg("engine", all_insts, minutes, n_min, rec, trace)
            running = (minutes[eg.id] > 0) if eg is not None else np.zeros(n_min, dtype=bool)
            n_idle = int(np.count_nonzero((F_e > 0) & ~running))
            if n_idle:
                rec.treat("engine_not_generating", instrument_id=eg.id if eg else None, stream="engine", count=n_idle,
                          unit="minutes", clause=clauses.F_CH4_EL,
                          detail="minutes with methane sent to the engine but no electricity generated (or no generation "
                                 "reading): methane not counted as destroyed")
            out["F_CH4_EL_y"] = float(F_e[running].sum()) / 1000.0
            trace.record("F_CH4_EL_y", out["F_CH4_EL_y"], "t", equation="Σ_{m: EG > 0} V_n,m / 60 × v_CH4,m × ρ_CH4,n / 1000",
                         clause=clauses.F_CH4_EL, inputs={"minutes_generating": int(np.count_nonzero(running))})
    return out, rec.items
