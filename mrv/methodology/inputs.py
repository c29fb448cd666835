"""``mrv calculate``: run a calculator on parameter values and pre-aggregated monitored values.

Input file (JSON, or YAML for ``.yaml``/``.yml``)::

    parameters:                       # as in a project file: {value, unit, source} or a bare value
      project_type: wind
      EF_grid_OM_y: {value: 0.9646, unit: tCO2e/MWh, source: "CEA v21.0"}
    monitored:                        # pre-aggregated values for the period, keyed by MonitoredSpec.name
      EG_export_y: {value: 100000000, unit: kWh}   # converted to the declared unit (MWh)
      EG_import_y: 500                # bare value: already in the declared unit

Nothing is aggregated here: the data-quality treatments of :meth:`Methodology.aggregate` are not
applied, so this is for checking one number (methodology authors, VVBs), not for issuance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mrv.errors import MethodologyError
from mrv.methodology.base import CalculationResult, Methodology

INPUT_KEYS = ("parameters", "monitored")


def read_inputs(path: Path) -> dict[str, Any]:
    """Parse and shape-check an inputs file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MethodologyError(f"{path}: inputs file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MethodologyError(f"{path}: cannot read inputs file ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MethodologyError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MethodologyError(f"{path}: not valid JSON ({exc}); use .yaml/.yml for YAML") from None
    return check_inputs(doc, source=str(path))


def check_inputs(doc: Any, *, source: str = "<inputs>") -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise MethodologyError(f"{source}: expected a mapping with 'parameters' and 'monitored'")
    unknown = sorted(set(map(str, doc)) - set(INPUT_KEYS))
    if unknown:
        raise MethodologyError(f"{source}: unknown key(s) {', '.join(unknown)}; expected {', '.join(INPUT_KEYS)}")
    out: dict[str, Any] = {}
    for key in INPUT_KEYS:
        section = doc.get(key) or {}
        if not isinstance(section, Mapping):
            raise MethodologyError(f"{source}: '{key}' must be a mapping of symbol -> value")
        out[key] = dict(section)
    return out


def calculate_from_inputs(m: Methodology, inputs: Mapping[str, Any]) -> tuple[CalculationResult, dict[str, float]]:
    """Convert the monitored values at the edge and run; returns the result and the monitored
    values as the calculator saw them (declared units)."""
    doc = check_inputs(inputs)
    monitored = m.resolve_monitored(doc["monitored"])
    result = m.run(raw_parameters=doc["parameters"], monitored=monitored)
    return result, monitored
