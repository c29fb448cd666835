"""mrv.signing.jcs.dumps gives exactly rfc8785.dumps: the same bytes, or the same exception."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrv.signing import jcs
from mrv.signing.dataintegrity import canonicalize


def _same(value: Any) -> None:
    try:
        want: bytes | type[BaseException] = rfc8785.dumps(value)
    except Exception as exc:  # noqa: BLE001 - the fast path must raise the same kind
        want = type(exc)
    try:
        got: bytes | type[BaseException] = jcs.dumps(value)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == want, (value, got, want)


def _nested(depth: int) -> Any:
    value: Any = 1.5
    for _ in range(depth):
        value = [value]
    return value


# Every kind of float: integral, tiny, huge, at the notation switches, NaN, infinities, -0.0.
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e22, max_value=1e22),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-6, 1e-7, 1e15, 999999999999999.9, 1e16, 1e21, 1e-324, 5e-324,
                     2.0**53, 2.0**53 - 1, -(2.0**53), 0.1, 0.30000000000000004, 1.7976931348623157e308]),
)
integers = st.one_of(st.integers(min_value=-(2**53) - 2, max_value=2**53 + 2), st.integers())
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)  # incl. controls, lone surrogates, astral
keys = st.one_of(texts, st.sampled_from(["a", "b", "é", "\ue000", "\U0001f600", "\ufb33", "\ud800", "", "A"]))
scalars = st.one_of(st.none(), st.booleans(), integers, floats, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=3000, deadline=None)
@given(json_values)
@example({"\ue000": 1, "\U0001f600": 2})  # UTF-16 order differs from code-point order
@example({"a": [1.0, -0.0, 2.5, 1e-7, 1e21, float("nan")]})
@example("\ud800")
@example(2**53)
def test_dumps_equals_rfc8785(value: Any) -> None:
    _same(value)


@settings(max_examples=3000, deadline=None)
@given(floats)
def test_floats_equal_rfc8785(value: float) -> None:
    _same(value)
    _same([value, {"x": value}])


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),  # tuples, sets, bytes, subclasses: rfc8785 decides
        {1: "a"},
        {"a": b"x"},
        {"a": {1, 2}},
        type("S", (str,), {})("sub"),
        type("D", (dict,), {})(a=1.0),
        True,
        None,
        _nested(300),  # deeper than orjson goes
    ],
)
def test_other_types_fall_back(value: Any) -> None:
    _same(value)


def test_integral_floats_are_not_changed_in_place() -> None:
    doc = {"a": 1.0, "b": [2.0, {"c": -0.0}]}
    before = json.dumps(doc)
    assert jcs.dumps(doc) == rfc8785.dumps(doc) == b'{"a":1,"b":[2,{"c":0}]}'
    assert json.dumps(doc) == before and isinstance(doc["a"], float) and math.copysign(1, doc["b"][1]["c"]) < 0


def test_signed_documents_of_a_real_package() -> None:
    """The credentials the pipeline signs (floats, nested quantities) canonicalise identically."""
    template = Path(__file__).resolve().parents[3] / "bench" / "_data" / "intake" / "template.zip"
    docs: list[Any] = []
    if template.exists():
        with zipfile.ZipFile(template) as zf:
            docs = [json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")]
    docs.append({"credentialSubject": {"quantities": {"tCO2e": 28.495786, "ef": 0.7, "zero": 0.0, "cap": 2.0},
                                       "boundary": {"type": "Point", "coordinates": [77.5, 8.9]}}, "id": "urn:x", "n": 12})
    for doc in docs:
        assert canonicalize(doc) == rfc8785.dumps(doc)
