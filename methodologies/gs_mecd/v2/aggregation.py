"""GS MECD v2.0 aggregation: validated per-device interval energy -> fleet monitored values.

Input: ``data.datasets["device_energy"]``, the tidy device frame (``device_id, ts, value [kWh per
interval], unit, ...``; see docs/internal-interfaces.md, "Generic monitored data"), and
``data.sources["devices"]``, the device registry rows (``device_id, serial, commissioned,
accuracy_class [%], calibration_valid_from, calibration_valid_to``, extra attributes).

Output (monitored values of :class:`~methodologies.gs_mecd.v2.calculator.MECD`)::

    EG_p_y     = Σ_{d reporting} E_d × (1 − a_d / 100) / 1000        [MWh]  (baseline side)
    EG_p_PE_y  = Σ_{d reporting} E_d × (1 + a_d / 100) / 1000        [MWh]  (project-emission side)
    N_p_y      = devices in service (commissioned before the period end)
    N_p_rep_y  = devices whose coverage c_d ≥ 0.5

where ``E_d`` [kWh] is the sum of device d's usable interval readings, ``a_d`` its accuracy class
(maximum permissible error, %) and ``c_d`` = usable intervals / expected intervals from
``max(period start, commissioning)`` to the period end.

Treatments, in order (each counted, recorded in the trace and returned):

1. rows of devices not in the registry are dropped;
2. rows without a time, or outside ``[start, end)``, are dropped;
3. rows without a finite, non-negative value are dropped (a missing interval);
4. rows before the device's commissioning are dropped;
5. rows outside the meter's calibration validity are dropped (``calibration_valid`` column when the
   contract provided it, else the registry dates);
6. an interval delivered more than once counts once, at its lowest value;
7. devices below the minimum coverage are excluded; gaps of the others are not filled;
8. the meter's MPE is applied in the conservative direction (lower for BE, higher for PE).

Everything is vectorised over rows (numpy bincount / reduceat on integer device codes); Python loops
run only over registry devices (thousands), never over readings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from methodologies.gs_mecd.v2 import clauses
from mrv.errors import MethodologyError
from mrv.methodology import MonitoringInput, Trace

DATASET = "device_energy"
US_PER_MINUTE = 60_000_000
US_PER_DAY = 86_400_000_000
NAT = np.iinfo(np.int64).min
INFER_ROWS = 2_000_000


def _utc_us(values: Any) -> np.ndarray:
    """UTC microseconds (NaT -> int64 min) of dates/datetimes; naive values are taken as UTC."""
    s = pd.to_datetime(pd.Series([None if v is None or v == "" else str(v) for v in values], dtype=object), errors="coerce", utc=True, format="ISO8601")
    return s.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


def _ts_us(series: pd.Series) -> np.ndarray:
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        raise MethodologyError(f"MECD: device_energy.ts must be timezone-aware datetime64 (UTC), got {series.dtype}")
    if series.dtype.unit == "us":
        return np.asarray(series.array.asi8)
    return series.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


class _Registry:
    """Registry rows as arrays indexed by device code (registry order)."""

    def __init__(self, rows: Any) -> None:
        if not rows:
            raise MethodologyError("MECD: no device registry (MonitoringInput.sources['devices'] is empty)")
        reg = pd.DataFrame(list(rows))
        for col in ("device_id", "commissioned", "accuracy_class"):
            if col not in reg.columns:
                raise MethodologyError(f"MECD: device registry has no {col} column")
        self.ids = reg["device_id"].astype(str).tolist()
        if len(set(self.ids)) != len(self.ids):
            raise MethodologyError("MECD: device registry lists a device more than once")
        self.commissioned = _utc_us(reg["commissioned"])
        if (self.commissioned == NAT).any():
            bad = self.ids[int(np.flatnonzero(self.commissioned == NAT)[0])]
            raise MethodologyError(f"MECD: device {bad} has no commissioning date in the registry")
        acc = pd.to_numeric(reg["accuracy_class"], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(acc) & (acc >= 0) & (acc < 100)):
            bad = self.ids[int(np.flatnonzero(~(np.isfinite(acc) & (acc >= 0) & (acc < 100)))[0])]
            raise MethodologyError(f"MECD: device {bad}: accuracy_class must be a percentage in [0, 100)")
        self.accuracy = acc
        n = len(self.ids)
        lo = _utc_us(reg["calibration_valid_from"]) if "calibration_valid_from" in reg else np.full(n, NAT)
        hi = _utc_us(reg["calibration_valid_to"]) if "calibration_valid_to" in reg else np.full(n, NAT)
        has = (lo != NAT) & (hi != NAT)
        # valid_to is an inclusive date: valid up to the following midnight. No window: never valid.
        self.cal_lo = np.where(has, lo, np.iinfo(np.int64).max)
        self.cal_hi = np.where(has, hi + US_PER_DAY, np.iinfo(np.int64).min)
        self.interval_minutes = (
            pd.to_numeric(reg["interval_minutes"], errors="coerce").to_numpy(dtype=np.float64) if "interval_minutes" in reg else None
        )

    @property
    def n(self) -> int:
        return len(self.ids)


def _codes(device_id: pd.Series, registry: _Registry) -> np.ndarray:
    """Registry position of each row's device (int32), -1 for devices not in the registry."""
    index = {d: i for i, d in enumerate(registry.ids)}
    if isinstance(device_id.dtype, pd.CategoricalDtype):
        cats = device_id.cat.categories
        remap = np.array([index.get(str(c), -1) for c in cats] + [-1], dtype=np.int32)
        return remap[device_id.cat.codes.to_numpy()]
    fcodes, uniques = pd.factorize(device_id, use_na_sentinel=True)
    remap = np.array([index.get(str(u), -1) for u in np.asarray(uniques, dtype=object).tolist()] + [-1], dtype=np.int32)
    return remap[np.asarray(fcodes, dtype=np.int64)]


def _interval_us(data: MonitoringInput, registry: _Registry, codes: np.ndarray, ts: np.ndarray, trace: Trace) -> int:
    declared = data.sources.get("device_interval_minutes")
    how = "MonitoringInput.sources['device_interval_minutes']"
    if declared is None and registry.interval_minutes is not None:
        vals = np.unique(registry.interval_minutes[np.isfinite(registry.interval_minutes)])
        if len(vals) > 1:
            raise MethodologyError(f"MECD: devices declare different reading intervals {vals.tolist()} minutes; one fleet interval is supported")
        if len(vals) == 1:
            declared, how = float(vals[0]), "device registry column interval_minutes"
    if declared is None:
        # The most frequent step between consecutive readings of a device, from the first rows (enough
        # to find a regular meter interval without a pass over tens of millions of rows).
        codes, ts = codes[:INFER_ROWS], ts[:INFER_ROWS]
        same = codes[1:] == codes[:-1]
        steps = (ts[1:] - ts[:-1])[same & (ts[1:] > ts[:-1])] // US_PER_MINUTE
        steps = steps[(steps > 0) & (steps <= 1440)]
        if len(steps) == 0:
            raise MethodologyError("MECD: cannot infer the reading interval (no two consecutive readings of one device); declare it")
        declared, how = float(np.bincount(steps.astype(np.int64)).argmax()), "most frequent step between consecutive readings of a device"
    minutes = float(declared)
    if not (minutes > 0 and minutes.is_integer() and 1440 % int(minutes) == 0):
        raise MethodologyError(f"MECD: reading interval {declared} min must be a whole number of minutes dividing a day")
    trace.record("interval_minutes", int(minutes), "min", equation=how, clause=clauses.INTERVAL)
    return int(minutes) * US_PER_MINUTE


def aggregate_device_energy(data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Validated device readings + registry -> ``EG_p_y``, ``EG_p_PE_y`` [MWh], ``N_p_y``, ``N_p_rep_y``."""
    if DATASET not in data.datasets:
        raise MethodologyError(f"MECD: no {DATASET!r} dataset in the monitoring input (have: {', '.join(data.datasets) or 'none'})")
    df = data.datasets[DATASET]
    for col in ("device_id", "ts", "value"):
        if col not in df.columns:
            raise MethodologyError(f"MECD: {DATASET} has no column {col!r}")
    registry = _Registry(data.sources.get("devices"))
    if pd.Timestamp(data.start).tzinfo is None or pd.Timestamp(data.end).tzinfo is None:
        raise MethodologyError("MECD: the monitoring period must be timezone-aware")
    start, end = (int(pd.Timestamp(x).tz_convert("UTC").tz_localize(None).as_unit("us").asm8.view(np.int64)) for x in (data.start, data.end))
    if end <= start:
        raise MethodologyError(f"MECD: empty monitoring period [{data.start}, {data.end})")

    treatments: list[dict[str, Any]] = []

    def drop(kind: str, n: int, clause: str, detail: str) -> None:
        if n:
            item = {"kind": kind, "device_id": None, "rows": int(n), "clause": clause, "detail": detail}
            treatments.append(item)
            trace.record(f"rows_dropped[{kind}]", int(n), "rows", equation="count", clause=clause, note=detail)

    codes = _codes(df["device_id"], registry)
    ts = _ts_us(df["ts"])
    v = df["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    n_rows = len(codes)
    count = np.count_nonzero

    # One boolean mask, narrowed in place; each step's count is the treatment's row count.
    keep = codes >= 0
    kept = count(keep)
    drop("device_not_in_registry", n_rows - kept, clauses.DEVICE_REGISTRY, "readings of devices not in the registry")
    keep &= ts >= start  # NaT (int64 min) is before any start
    keep &= ts < end
    now = count(keep)
    drop("outside_period", kept - now, clauses.OUTSIDE_PERIOD, "no time, or interval start outside the monitoring period")
    kept = now
    keep &= v >= 0  # NaN compares False
    keep &= v < np.inf
    now = count(keep)
    drop("invalid_value", kept - now, clauses.INVALID_VALUE, "missing, non-finite or negative energy value")
    kept = now
    safe = np.maximum(codes, 0)
    keep &= ts >= registry.commissioned[safe]
    now = count(keep)
    drop("before_commissioning", kept - now, clauses.COMMISSIONING, "readings before the device's commissioning date")
    kept = now
    if "calibration_valid" in df.columns:
        keep &= df["calibration_valid"].to_numpy(dtype=bool, na_value=False)
        cal_how = "calibration_valid column of the validated frame"
    else:
        keep &= ts >= registry.cal_lo[safe]
        keep &= ts < registry.cal_hi[safe]
        cal_how = "registry calibration_valid_from/to"
    now = count(keep)
    drop("calibration_not_valid", kept - now, clauses.CALIBRATION, f"readings outside the meter's calibration validity ({cal_how})")
    kept = now
    del safe

    if kept == n_rows:  # the usual validated frame: no copies
        c, t, val = codes, ts, v
    else:
        c, t, val = codes[keep], ts[keep], v[keep]
    del keep
    interval = _interval_us(data, registry, c, t, trace)
    n_slots = -(-(end - start) // interval)
    key = c.astype(np.int64)
    key *= n_slots
    key += (t - start) // interval
    if len(key) > 1 and not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key, kind="stable")
        key, val = key[order], val[order]
    same = key[1:] == key[:-1] if len(key) > 1 else np.zeros(0, dtype=bool)
    n_dup = count(same)
    if n_dup:
        dup_pos = np.flatnonzero(same) + 1  # rows repeating the interval of the row before
        group = dup_pos - np.arange(1, n_dup + 1)  # index of that interval among the unique ones
        first = np.ones(len(key), dtype=bool)
        first[dup_pos] = False
        key_u, val_u = key[first], val[first]
        np.minimum.at(val_u, group, val[dup_pos])
    else:
        key_u, val_u = key, val
    del key, same
    drop("duplicate_interval", n_dup, clauses.DUPLICATES, "extra copies of an interval (the lowest value is kept)")

    n = registry.n
    code_u = key_u // n_slots
    E = np.bincount(code_u, weights=val_u, minlength=n)  # [kWh]
    n_int = np.bincount(code_u, minlength=n)
    slots_per_day = US_PER_DAY // interval
    # (device, day) as one integer; days are counted from the period start in UTC.
    dkey = code_u * (n_slots // slots_per_day + 2) + (key_u - code_u * n_slots) // slots_per_day
    new_day = np.ones(len(dkey), dtype=bool)
    if len(dkey) > 1:
        np.not_equal(dkey[1:], dkey[:-1], out=new_day[1:])
    rep_days = np.bincount(code_u[new_day], minlength=n)
    del dkey, new_day

    active_from = np.maximum(registry.commissioned, start)
    in_service = active_from < end
    first_slot = -(-(active_from - start) // interval)
    expected = np.where(in_service, n_slots - np.minimum(first_slot, n_slots), 0)
    coverage = np.divide(n_int, expected, out=np.zeros(n), where=expected > 0)
    reporting = in_service & (coverage >= clauses.MIN_DEVICE_COVERAGE)

    a = registry.accuracy / 100.0
    E_rep = np.where(reporting, E, 0.0)
    EG_be_kwh = float(np.sum(E_rep * (1.0 - a)))
    EG_pe_kwh = float(np.sum(E_rep * (1.0 + a)))
    raw_kwh = float(E_rep.sum())

    commissioned_late = np.flatnonzero(in_service & (registry.commissioned > start))
    if len(commissioned_late):
        ids = [registry.ids[i] for i in commissioned_late]
        treatments.append({"kind": "commissioned_in_period", "device_id": None, "devices": len(ids), "device_ids": ids,
                           "clause": clauses.COMMISSIONING,
                           "detail": "devices commissioned after the period start: expected intervals counted from commissioning"})
    not_in_service = [registry.ids[i] for i in np.flatnonzero(~in_service)]
    if not_in_service:
        treatments.append({"kind": "not_in_service", "device_id": None, "devices": len(not_in_service), "device_ids": not_in_service,
                           "clause": clauses.COMMISSIONING, "detail": "commissioned on or after the period end: not counted"})
    for i in np.flatnonzero(in_service & ~reporting):
        treatments.append({
            "kind": "device_excluded_low_coverage", "device_id": registry.ids[i], "coverage": float(coverage[i]),
            "reporting_days": int(rep_days[i]), "intervals": int(n_int[i]), "expected_intervals": int(expected[i]),
            "kWh_excluded": float(E[i]), "clause": clauses.DEVICE_COVERAGE,
            "detail": f"valid readings cover {coverage[i]:.1%} of the expected intervals (< {clauses.MIN_DEVICE_COVERAGE:.0%}): excluded",
        })
    gaps = reporting & (n_int < expected)
    if gaps.any():
        treatments.append({"kind": "gaps_not_filled", "device_id": None, "devices": int(gaps.sum()),
                           "missing_intervals": int((expected - n_int)[gaps].sum()), "clause": clauses.DEVICE_COVERAGE,
                           "detail": "missing intervals of reporting devices contribute no energy (not filled)"})
    treatments.append({"kind": "meter_accuracy", "device_id": None, "kWh_metered": raw_kwh,
                       "kWh_for_BE": EG_be_kwh, "kWh_for_PE": EG_pe_kwh, "clause": clauses.MPE,
                       "detail": "each device's accuracy class applied: (1 − MPE) for baseline, (1 + MPE) for project emissions"})

    per_device = {
        registry.ids[i]: {"kWh": float(E[i]), "coverage": float(coverage[i]), "reporting_days": int(rep_days[i]),
                          "accuracy_class_pct": float(registry.accuracy[i]), "reporting": bool(reporting[i])}
        for i in np.flatnonzero(in_service)
    }
    trace.record("EG_p_d_y", raw_kwh, "kWh", equation="Σ_d E_d over reporting devices (per device: inputs)", clause=clauses.EG_P,
                 inputs=per_device, note="per device: metered kWh after treatments 1-6, coverage, reporting days, MPE, included")
    N_p_y = int(in_service.sum())
    N_p_rep_y = int(reporting.sum())
    trace.record("N_p_y", N_p_y, "devices", equation="devices in the registry commissioned before the period end",
                 clause=clauses.COMMISSIONING, inputs={"registry_devices": n})
    trace.record("N_p_rep_y", N_p_rep_y, "devices", equation=f"devices in service with coverage ≥ {clauses.MIN_DEVICE_COVERAGE}",
                 clause=clauses.DEVICE_COVERAGE, inputs={"excluded": N_p_y - N_p_rep_y})
    EG_p_y = trace.record("EG_p_y", EG_be_kwh / 1000.0, "MWh", equation="Σ_d E_d × (1 − a_d/100) / 1000 (reporting devices)",
                          clause=clauses.MPE, inputs={"kWh_metered": raw_kwh})
    EG_p_PE_y = trace.record("EG_p_PE_y", EG_pe_kwh / 1000.0, "MWh", equation="Σ_d E_d × (1 + a_d/100) / 1000 (reporting devices)",
                             clause=clauses.MPE, inputs={"kWh_metered": raw_kwh})
    monitored = {"EG_p_y": float(EG_p_y), "EG_p_PE_y": float(EG_p_PE_y), "N_p_y": float(N_p_y), "N_p_rep_y": float(N_p_rep_y)}
    return monitored, treatments

