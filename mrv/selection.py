"""Row selections: a validated dataset stored as the rows it keeps of its input artifacts.

The contract keeps most rows of a fleet's readings as they are and adds one column
(``calibration_valid``). Writing those rows again as a second Parquet copy doubled the encoding
cost of the sensor path and the size of every package. A *row selection* records instead, for
each input artifact (by role and sha256): how many rows it has, which of them the contract kept
(``keep``) and which kept rows were read outside a valid calibration (``calibration_invalid``),
both as half-open ``[start, stop)`` ranges of row positions. It is the deletion-vector idea of
table formats (Delta Lake, Iceberg): the data stays where it is, content-addressed, and the
selection is a small, deterministic JSON document that a verifier can read and recompute.

The valid frame is :func:`materialize` of the selection and the input frames: each input's kept
rows, in input order, with ``calibration_valid`` appended, categoricals recoded onto the union of
the inputs' categories (as their concatenation would have them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from mrv.errors import MRVError

SELECTION_FORMAT: Final = "open-dmrv/row-selection"
SELECTION_VERSION: Final = 1
ADDED_COLUMN: Final = "calibration_valid"


class SelectionError(MRVError):
    """A row selection that does not match its inputs, or is malformed."""


def ranges(mask: np.ndarray) -> list[list[int]]:
    """Half-open ``[start, stop)`` runs of True in a boolean ``mask``."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return []
    edges = np.flatnonzero(np.diff(m.view(np.int8))) + 1
    bounds = np.r_[0, edges, m.size]
    first = bool(m[0])
    # Runs alternate True/False from the first value: take every other run.
    starts, stops = bounds[:-1], bounds[1:]
    pick = slice(0 if first else 1, None, 2)
    return [[int(a), int(b)] for a, b in zip(starts[pick].tolist(), stops[pick].tolist())]


def mask_of(spans: Sequence[Sequence[int]], n: int, *, what: str = "ranges") -> np.ndarray:
    """The boolean mask of length ``n`` that is True on ``spans`` (checked: sorted, disjoint, in range)."""
    out = np.zeros(n, dtype=bool)
    last = 0
    for span in spans:
        if len(span) != 2:
            raise SelectionError(f"{what}: {span!r} is not a [start, stop) pair")
        a, b = int(span[0]), int(span[1])
        if a < last or b <= a or b > n:
            raise SelectionError(f"{what}: [{a}, {b}) is out of order, empty or beyond the {n} rows")
        out[a:b] = True
        last = b
    return out


def selection_document(
    *,
    key: str,
    inputs: Sequence[tuple[str, str, int]],
    kept: np.ndarray | Sequence[np.ndarray],
    calibration_valid: Sequence[np.ndarray],
) -> dict[str, Any]:
    """The selection of a contract outcome over its inputs.

    ``inputs``: ``(role, sha256 digest, rows)`` per input artifact, in the order the contract saw
    them concatenated. ``kept``: one boolean per input row (that order), as one array or one
    array per input. ``calibration_valid``: the added column of the kept rows, one array per
    input (its kept rows, in order).
    """
    total = sum(n for _, _, n in inputs)
    if isinstance(kept, np.ndarray):
        if len(kept) != total:
            raise SelectionError(f"the outcome covers {len(kept)} rows, the inputs hold {total}")
        offsets = np.cumsum([0] + [n for _, _, n in inputs])
        per_input = [kept[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    else:
        per_input = list(kept)
        if len(per_input) != len(inputs) or any(len(k) != n for k, (_, _, n) in zip(per_input, inputs)):
            raise SelectionError("one kept mask per input, of its length, is needed")
    if len(calibration_valid) != len(inputs):
        raise SelectionError("one calibration_valid array per input is needed")
    series = []
    for (role, digest, n), cal, mask in zip(inputs, calibration_valid, per_input):
        cal = np.asarray(cal, dtype=bool)
        if len(cal) != int(np.count_nonzero(mask)):
            raise SelectionError(f"{role}: {len(cal)} calibration flags for {int(np.count_nonzero(mask))} kept rows")
        invalid = np.zeros(n, dtype=bool)
        if not cal.all():
            invalid[np.flatnonzero(mask)[~cal]] = True
        series.append({
            "role": role,
            "sha256": digest,
            "rows": int(n),
            "keep": ranges(mask),
            "calibration_invalid": ranges(invalid),
        })
    return {
        "format": SELECTION_FORMAT,
        "version": SELECTION_VERSION,
        "key": key,
        "added_columns": {ADDED_COLUMN: "bool"},
        "inputs": series,
    }


def is_selection(doc: Any) -> bool:
    return isinstance(doc, Mapping) and doc.get("format") == SELECTION_FORMAT


def materialize(
    doc: Mapping[str, Any], load: Callable[[str], pd.DataFrame], *, categories: Mapping[str, Sequence[Any]] | None = None
) -> list[pd.DataFrame]:
    """The valid rows per input (consecutive pieces of the valid frame; one schema).

    ``load(digest)`` returns the input frame of that artifact. The kept rows of an input kept
    whole are that frame itself (no copy). ``categories``: the categories to recode onto; by
    default the sorted union over the inputs' categoricals.
    """
    from mrv.frames import with_categories

    if not is_selection(doc):
        raise SelectionError("not a row selection document")
    if doc.get("version") != SELECTION_VERSION:
        raise SelectionError(f"row selection version {doc.get('version')!r} is not supported (this code reads {SELECTION_VERSION})")
    pieces: list[pd.DataFrame] = []
    frames: list[pd.DataFrame] = []
    for item in doc["inputs"]:
        frame = load(item["sha256"])
        n = int(item["rows"])
        if len(frame) != n:
            raise SelectionError(f"{item['role']} ({item['sha256']}): {len(frame)} rows, the selection expects {n}")
        frames.append(frame)
        keep, invalid = item["keep"], item["calibration_invalid"]
        whole = keep == [[0, n]] or (n == 0 and not keep)
        kept_mask = None if whole else mask_of(keep, n, what=f"{item['role']} keep")
        invalid_mask = mask_of(invalid, n, what=f"{item['role']} calibration_invalid") if invalid else None
        if invalid_mask is not None and kept_mask is not None and (invalid_mask & ~kept_mask).any():
            raise SelectionError(f"{item['role']}: calibration_invalid names rows that are not kept")
        piece = frame if kept_mask is None else frame.iloc[np.flatnonzero(kept_mask)].reset_index(drop=True)
        cal = np.ones(len(piece), dtype=bool)
        if invalid_mask is not None:
            cal = ~(invalid_mask if kept_mask is None else invalid_mask[kept_mask])
        pieces.append(piece.assign(**{ADDED_COLUMN: cal}))
    if categories is None:
        categories = union_categories(frames)
    return [with_categories(p, categories) for p in pieces]


def union_categories(frames: Sequence[pd.DataFrame]) -> dict[str, list[Any]]:
    """The categories each categorical column has in the concatenation of ``frames`` (sorted union)."""
    if not frames:
        return {}
    cols = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    return {c: sorted(set().union(*(f[c].cat.categories for f in frames if c in f.columns))) for c in cols}
