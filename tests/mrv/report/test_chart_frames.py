"""mrv.report.build.fleet_daily_totals: a fleet's daily energy, summed before charting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrv.report.build import fleet_daily_totals
from mrv.report.charts import daily_energy


def test_fleet_daily_totals_equal_the_chart_daily_sums_across_dst():
    rng = np.random.default_rng(3)
    # 15-minute readings of 7 devices over the European spring DST change, local days in Europe/Berlin.
    ts = pd.date_range("2024-03-29T00:00Z", "2024-04-02T00:00Z", freq="15min", inclusive="left")
    frame = pd.DataFrame(
        {
            "device_id": np.repeat([f"D{i}" for i in range(7)], len(ts)),
            "ts": np.tile(ts, 7),
            "value": rng.random(7 * len(ts)),
        }
    )
    direct = daily_energy(frame.assign(meter_id="fleet"), timezone="Europe/Berlin")
    summed = daily_energy(fleet_daily_totals(frame, label="fleet", timezone="Europe/Berlin"), timezone="Europe/Berlin")
    assert list(summed["day"]) == list(direct["day"])
    np.testing.assert_allclose(summed["kwh"].to_numpy(), direct["kwh"].to_numpy(), rtol=1e-12)
    assert len(summed) == 5  # 29 Mar .. 2 Apr local (the last UTC hours fall on 2 Apr in Berlin)
