"""Sensor-path benchmark: ingest -> contract -> calculate for a fleet of meters, against a raw
Parquet read of the same rows measured in the same run.

    .venv/bin/python bench/sensor.py --meters 100        # 100 meters x 1 year of 1-minute data (52.6 M rows)

Prints wall time, rows/s and the ratio to the raw read. The pipeline runs as plain functions (no
Prefect server start-up in the timing) with the native contract evaluator, as `mrv run` does above
`gx_row_limit` rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

HERE = Path(__file__).resolve().parent
MINUTES_PER_YEAR = 525_600


def generate(out: Path, *, meters: int, year: int = 2023, seed: int = 1) -> Path:
    """One Parquet file per meter (UTC timestamps, kWh per minute) and a project YAML. Reused if present."""
    project = out / f"project-{meters}.yaml"
    data = out / "meters"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start = np.datetime64(f"{year}-01-01T00:00", "m")
    ts = (start + np.arange(MINUTES_PER_YEAR).astype("timedelta64[m]")).astype("datetime64[us]")
    ts_arr = pa.array(ts, type=pa.timestamp("us", tz="UTC"))
    for m in range(meters):
        if (data / f"meter-{m:04d}.parquet").exists():
            continue  # generated data is reused between runs
        # 2 MW feeder, AR(1) wind-like capacity factor, kWh per minute.
        noise = rng.normal(0, 0.02, MINUTES_PER_YEAR)
        cf = 0.3 + lfilter([1.0], [1.0, -0.999], noise)  # AR(1), phi = 0.999 per minute
        kwh = np.clip(cf, 0, 1) * 2000.0 / 60.0
        table = pa.table({"timestamp": ts_arr, "value": pa.array(kwh.round(3))})
        pq.write_table(table, data / f"meter-{m:04d}.parquet", compression="zstd")
    meters_yaml = "\n".join(
        f"""    - {{id: M{m:04d}, serial: SN{m:04d}, direction: export, accuracy_class: 0.5, files: "meters/meter-{m:04d}.parquet",
        interval_minutes: 1, calibrations: [{{valid_from: {year - 1}-06-01, valid_to: {year + 1}-06-01}}]}}"""
        for m in range(meters)
    )
    project.write_text(
        f"""project: {{id: BENCH-FLEET, name: Benchmark fleet, type: wind}}
methodology: "CDM:ACM0002:22.0"
boundary: {{country: IN, geometry: {{type: Point, coordinates: [77.5, 8.9]}}}}
monitoring_period: {{start: {year}-01-01, end: {year}-12-31, timezone: UTC}}
installed_capacity: {{value: {2 * meters}, unit: MW}}
data_sources:
  meters:
{meters_yaml}
parameters:
  project_activity: {{value: greenfield}}
  EF_grid_CM_y: {{value: 0.7, unit: tCO2e/MWh, source: "benchmark value (not a published factor)"}}
"""
    )
    return project


def raw_read(files: list[Path]) -> tuple[float, float, int, float]:
    """Wall time of the pyarrow read, of the read plus pandas conversion, the rows, and the CPU
    time (all threads) of the pyarrow read."""
    c0, t0 = time.process_time(), time.perf_counter()
    tables = [pq.read_table(f) for f in files]
    t_arrow, c_arrow = time.perf_counter() - t0, time.process_time() - c0
    rows = sum(t.num_rows for t in tables)
    t0 = time.perf_counter()
    for t in tables:
        t.to_pandas()
    t_pandas = t_arrow + time.perf_counter() - t0
    return t_arrow, t_pandas, rows, c_arrow


def pipeline_run(project: Path, home: Path) -> tuple[float, dict]:
    from mrv import pipeline
    from mrv.settings import MRVSettings

    settings = MRVSettings(home=home, contract_engine="native")
    c0, t0 = time.process_time(), time.perf_counter()
    summary = pipeline.run_local(settings, project, max_workers=os.cpu_count() or 2)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    ctx = pipeline.RunContext.open(settings, run_id=summary["run_id"])
    steps = {s.name.split("[")[0]: 0.0 for s in ctx.lineage.list_steps(summary["run_id"])}
    for s in ctx.lineage.list_steps(summary["run_id"]):
        steps[s.name.split("[")[0]] += (s.ended_at - s.started_at).total_seconds()
    return total, {"steps": steps, "summary": summary, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=100)
    ap.add_argument("--data", type=Path, default=HERE / "_data" / "sensor")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved (raw read, pipeline) rounds; the median ratio is reported")
    args = ap.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    project = generate(args.data, meters=args.meters)
    print(f"data: {project} ({time.perf_counter() - t0:.1f}s to prepare)")
    files = sorted((args.data / "meters").glob("meter-*.parquet"))[: args.meters]

    print(f"rounds: {args.rounds} x (raw read, then the pipeline in a fresh workspace), interleaved so both see the same machine")
    rounds = []
    homes: list[Path] = []
    try:
        for r in range(args.rounds):
            t_arrow, t_pandas, rows, c_arrow = raw_read(files)
            # Workspaces are removed after the last round: deleting one's files just before the next
            # round would slow that round's file creation (ext4 scans recently freed inodes).
            homes.append(Path(tempfile.mkdtemp(prefix="mrv-bench-")))
            total, parts = pipeline_run(project, homes[-1])
            rounds.append((t_arrow, t_pandas, c_arrow, total, parts))
            steps = "  ".join(f"{name} {secs:.2f}" for name, secs in parts["steps"].items())
            print(f"round {r + 1}: raw read {t_arrow:6.2f} s (pandas {t_pandas:.2f})  mrv {total:6.2f} s  ratio {total / t_arrow:5.2f}x   "
                  f"CPU {c_arrow:.2f} vs {parts['cpu']:.2f} s ({parts['cpu'] / c_arrow:.2f}x)   steps (summed): {steps}")
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    s = rounds[-1][4]["summary"]
    ratios = sorted(r[3] / r[0] for r in rounds)
    best_raw, best_mrv = min(r[0] for r in rounds), min(r[3] for r in rounds)
    mid = rounds[sorted(range(len(rounds)), key=lambda i: rounds[i][3] / rounds[i][0])[len(rounds) // 2]]
    print(f"rows: {rows:,} ({args.meters} meters x 1 year of 1-minute data)")
    print(f"raw read  pyarrow       {mid[0]:8.2f} s  {rows / mid[0] / 1e6:8.1f} M rows/s   (median-ratio round)")
    print(f"mrv       total         {mid[3]:8.2f} s  {rows / mid[3] / 1e6:8.1f} M rows/s")
    print("          (ingest_meter stores each meter's raw files and a derivation of its readings; right after it, in the same\n"
          "           worker and outside the step's timing, the meter's contract outcome and ACM0002 treatment are computed and\n"
          "           its rows let go; validate_readings merges the outcomes, calculate aggregates the treatments)")
    print(f"ratio vs raw pyarrow read: median {ratios[len(ratios) // 2]:.2f}x over {len(ratios)} rounds "
          f"(min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x); best vs best {best_mrv / best_raw:.2f}x   (target: <= 3x)")
    print(f"issuable: {s['issuable_tCO2e']:,} tCO2e")
    load_after = os.getloadavg()
    print(f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}   after: {' '.join(f'{x:.2f}' for x in load_after)}"
          "   (2 shared cores: compare ratios from the same run only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
