"""mrv.methodology.conservative: the explicit conservative rules, each recorded in the trace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrv.errors import MethodologyError
from mrv.methodology import round_down_issuable as exported
from mrv.methodology.base import round_down_issuable as from_base
from mrv.methodology.conservative import (
    apply_uncertainty,
    choose_conservative,
    choose_higher,
    choose_lower,
    round_down_issuable,
)
from mrv.methodology.trace import Trace


def test_rounding_is_one_function():
    assert exported is from_base is round_down_issuable


def test_choose_lower_records_the_choice():
    t = Trace()
    assert choose_lower("EG_y", {"metered": 1000.0, "invoiced": 990.0}, "MWh", trace=t, clause="c1") == 990.0
    (step,) = t.steps
    assert (step.symbol, step.value, step.unit, step.clause) == ("EG_y", 990.0, "MWh", "c1")
    assert step.equation == "min(metered, invoiced)" and step.inputs == {"metered": 1000.0, "invoiced": 990.0}
    assert step.note == "lower value: invoiced"


def test_choose_higher_and_ties():
    t = Trace()
    assert choose_higher("PE_y", {"measured": 5.0, "default": 7.5}, "tCO2e", trace=t, note="TOOL03") == 7.5
    assert t.steps[0].note == "higher value: default; TOOL03" and t.steps[0].equation == "max(measured, default)"
    assert "Conservativeness" in t.steps[0].clause
    choose_lower("x", {"a": 1.0, "b": 1.0}, "MWh", trace=t)
    assert t.steps[1].note == "lower value: a"  # ties: the first listed


def test_choose_conservative_by_effect():
    t = Trace()
    c = {"a": 1.0, "b": 2.0}
    assert choose_conservative("BE", c, "tCO2e", effect="raises_result", trace=t) == 1.0
    assert choose_conservative("PE", c, "tCO2e", effect="lowers_result", trace=t) == 2.0
    with pytest.raises(MethodologyError, match="effect"):
        choose_conservative("PE", c, "tCO2e", effect="sideways", trace=t)  # type: ignore[arg-type]


@pytest.mark.parametrize("candidates", [{}, {"a": float("nan")}])
def test_bad_candidates(candidates):
    with pytest.raises(MethodologyError, match="EG_y"):
        choose_lower("EG_y", candidates, "MWh", trace=Trace())


@pytest.mark.parametrize(
    ("value", "effect", "expected"),
    [(1000.0, "raises_result", 980.0), (1000.0, "lowers_result", 1020.0), (-1000.0, "raises_result", -1020.0),
     (-1000.0, "lowers_result", -980.0)],
)
def test_apply_uncertainty(value, effect, expected):
    """2 % MPE: 1,000 × 0.98 = 980 (credited), × 1.02 = 1,020 (deducted); magnitudes move the same way for negatives."""
    t = Trace()
    assert apply_uncertainty("EG_y", value, 0.02, "MWh", effect=effect, trace=t, clause="VVS") == pytest.approx(expected)
    assert t.steps[0].inputs == {"EG_y_raw": value, "u": 0.02} and t.steps[0].clause == "VVS"


@pytest.mark.parametrize("u", [-0.1, 1.0, float("nan")])
def test_apply_uncertainty_refuses_bad_fractions(u):
    with pytest.raises(MethodologyError, match="uncertainty"):
        apply_uncertainty("EG_y", 1.0, u, "MWh", effect="raises_result", trace=Trace(), clause="c")


@given(x=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_round_down_never_up_never_negative(x):
    n = round_down_issuable(x)
    assert isinstance(n, int) and n >= 0 and n <= max(0.0, x) + 1e-6


@given(cands=st.dictionaries(st.text(min_size=1, max_size=5), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1),
       u=st.floats(min_value=0.0, max_value=0.99))
def test_conservative_helpers_never_raise_the_result(cands, u):
    """The chosen value never exceeds any candidate that raises the result (and never falls below one
    that lowers it); the uncertainty adjustment never moves a credited value up or a deducted one down."""
    t = Trace()
    assert choose_lower("a", cands, "u", trace=t) <= min(cands.values())
    assert choose_higher("b", cands, "u", trace=t) >= max(cands.values())
    v = next(iter(cands.values()))
    assert apply_uncertainty("c", v, u, "u", effect="raises_result", trace=t, clause="c") <= v
    assert apply_uncertainty("d", v, u, "u", effect="lowers_result", trace=t, clause="c") >= v
