"""Derived frames: an artifact that records how a frame is recomputed from content-addressed inputs.

Normalising a meter's, an instrument's or a device fleet's raw files (UTC, one unit, one tidy
schema) is a pure, versioned function of their bytes. Storing its output as a second Parquet copy of every reading cost more than reading
the raw files again (encoding ~15 ms per meter-year of minute data, decoding ~8 ms, against ~9 ms
to re-read the raw file) and doubled the store. A *derivation* document records instead the
function, the code version, the inputs (role, sha256 and file name) and the parameters, plus the
number of rows the function returned; like a database view or a kerchunk reference, the frame is
recomputed on demand (:func:`mrv.pipeline.read_parquet_artifact`) and checked against that row
count. Its digest changes whenever an input, a parameter or the code version does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from mrv.errors import ArtifactError

DERIVATION_FORMAT: Final = "open-dmrv/derived-frame"
DERIVATION_VERSION: Final = 1

# The functions a derivation may name (a closed set: a document cannot make us call anything else).
METER_READINGS: Final = "mrv.ingest.meters.read_meter_files"
INSTRUMENT_READINGS: Final = "mrv.ingest.series.read_instrument_files"
DEVICE_READINGS: Final = "mrv.ingest.series.read_device_files"
FUNCTIONS: Final = frozenset({METER_READINGS, INSTRUMENT_READINGS, DEVICE_READINGS})


def derivation_document(
    *, function: str, code_version: str, inputs: Sequence[tuple[str, str, str]], parameters: Mapping[str, Any], rows: int
) -> dict[str, Any]:
    """``inputs``: ``(role, sha256 digest, file name)`` in the order the function reads them."""
    if function not in FUNCTIONS:
        raise ArtifactError(f"unknown derivation function {function!r}")
    return {
        "format": DERIVATION_FORMAT,
        "version": DERIVATION_VERSION,
        "function": function,
        "code_version": code_version,
        "inputs": [{"role": r, "sha256": d, "name": n} for r, d, n in inputs],
        "parameters": dict(parameters),
        "rows": int(rows),
    }


def is_derivation(doc: Any) -> bool:
    return isinstance(doc, Mapping) and doc.get("format") == DERIVATION_FORMAT


def check_derivation(doc: Mapping[str, Any], *, what: str) -> None:
    """Refuse a derivation this code cannot recompute (format version, function)."""
    if doc.get("version") != DERIVATION_VERSION:
        raise ArtifactError(f"{what}: derivation version {doc.get('version')!r} is not supported (this code reads {DERIVATION_VERSION})")
    if doc.get("function") not in FUNCTIONS:
        raise ArtifactError(f"{what}: unknown derivation function {doc.get('function')!r}")
    if not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise ArtifactError(f"{what}: a derivation needs its inputs")
