"""Accounting as documented: cash, sizing and the trailing stop, through both engines.

The signals are written in the data (``tests/plugins/scripted_signal.py``: volume = 1000 + 100 x
signal), so a test states the exact targets it wants.  The README's "Execution model" is the spec:
the hand computations below follow its words, solved numerically, never the engine's code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import sweep
from containers.data import Universe, frequency
from containers.synthetic import session_timestamps
from sweep.engine import simulate
from sweep.reference import reference_simulate

PLUGIN = str(Path(__file__).parent / "plugins" / "scripted_signal.py")
NAN = math.nan


def volume(signals) -> np.ndarray:
    return np.array([0.0 if math.isnan(s) else 1000.0 + 100.0 * s for s in signals])


def universe(opens, closes, signals) -> Universe:
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    ts = session_timestamps(len(c), "2024-01-02", "1h")
    per_day, per_year = frequency(ts)
    return Universe(
        "T", ts, o, np.maximum(o, c) + 1.0, np.minimum(o, c) - 1.0, c, volume(signals), "t", per_day, per_year
    )


def config(portfolio=None, execution=None, risk=None) -> dict:
    cfg = {
        "data": {"synthetic": {"bars": 100}},  # replaced by the test's universe
        "plugins": [PLUGIN],
        "strategies": [{"type": "scripted_signal"}],
        "portfolio": {"allow_short": True, **(portfolio or {})},
        "execution": execution or {},
    }
    if risk:
        cfg["risk"] = risk
    return cfg


def fills(cfg: dict, u: Universe) -> list[np.ndarray]:
    """Each engine's FILL events as rows (bar, qty, price, commission, cash, position): fast, reference."""
    plan = sweep.expand(cfg, count_data=False)
    out = []
    for engine in (simulate, reference_simulate):
        res = engine(plan, u, np.arange(1), record_events=True)
        ev = np.concatenate([e[1] for e in res.events], axis=1).T if res.events else np.zeros((0, 12))
        out.append(ev[ev[:, 0] == 1][:, 1:7])
    return out


# ------------------------------------------------------------------ the README's sizing, by hand


def _root(f, a: float, b: float) -> float:
    """A root of ``f`` between ``a`` and ``b`` (signs differ), by bisection down to adjacent floats."""
    fa = f(a)
    for _ in range(2000):
        m = 0.5 * (a + b)
        if m in (a, b):
            break
        if (f(m) > 0.0) == (fa > 0.0):
            a, fa = m, f(m)
        else:
            b = m
    return 0.5 * (a + b)


def fill_by_hand(target, cash, pos, price, ref_range, ex, size, fractional):
    """(qty, fill price, commission, cash after) of one fill, as the README's Execution model states it."""

    def slipped(direction):
        slip = price * ex["bps"] * 1e-4 + ex["range_fraction"] * ref_range
        return price + slip if direction > 0 else price - slip

    def comm(q, px):
        return max(ex["minimum"], ex["fixed"] + ex["rate"] * abs(q) * px + ex["per_share"] * abs(q))

    goal = 0.0
    equity = cash + pos * price
    if target != 0.0 and equity > 0.0:
        px = slipped(1.0 if target * equity / price > pos else -1.0)
        e = cash + pos * px  # the equity at the fill price

        # goal * px = target * (E - C), C the commission of the order goal - position
        def f(g):
            return g * px - target * (e - comm(g - pos, px))

        ends = sorted((0.0, target * e / px))
        if f(ends[0]) * f(ends[1]) < 0.0:  # else the equity does not pay the commission: no position
            goal = _root(f, *ends)
        if not fractional:
            goal = float(math.trunc(goal))
    qty = goal - pos
    px = slipped(qty)
    cover = max(-pos, 0.0)
    if qty > cover and size <= 1.0:  # the cash cap: the largest order the cash pays, commission included
        most = _root(lambda q: cash - q * px - comm(q, px), 0.0, cash / px + 1.0)
        most = most if fractional else math.floor(most)
        qty = min(qty, max(most, cover))
    c = comm(qty, px)
    return qty, px, c, cash - qty * px - c


def csv_of(tmp_path, opens, closes, signals) -> str:
    lines = ["timestamp,open,high,low,close,volume"]
    for i, (o, c, v) in enumerate(zip(opens, closes, volume(signals))):
        lines.append(f"2024-01-02 10:{i:02d}:00,{o},{max(o, c) + 1.0},{min(o, c) - 1.0},{c},{v}")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


OPENS = [100.0, 100.5, 101.25, 102.0, 103.5, 101.0, 99.75, 100.25, 101.5, 102.0]
CLOSES = [100.25, 101.0, 101.75, 103.0, 102.5, 100.0, 100.5, 101.0, 101.75, 102.5]
LONG_THEN_SHORT = [0.0, 1.0, NAN, -1.0, NAN, 0.0, NAN, NAN, NAN, NAN]
SHORT_THEN_LONG = [0.0, -1.0, NAN, 1.0, NAN, 0.0, NAN, NAN, NAN, NAN]
HALF_THEN_REVERSE = [0.0, 0.5, NAN, -0.75, NAN, 0.0, NAN, NAN, NAN, NAN]

SIZING = [
    ({"position_size": 1.0}, {"commission": {"rate": 0.001}}, LONG_THEN_SHORT),
    ({"position_size": 0.5}, {"commission": {"fixed": 5.0}}, LONG_THEN_SHORT),
    ({"position_size": 1.0}, {"commission": {"rate": 0.0001, "minimum": 25.0}}, SHORT_THEN_LONG),
    (
        {"position_size": 1.0, "fractional_shares": False},
        {"commission": {"per_share": 0.01}, "slippage": 10},
        LONG_THEN_SHORT,
    ),
    (
        {"position_size": 0.6},
        {"fill": "close", "commission": {"rate": 0.002}, "slippage": {"range_fraction": 0.25}},
        SHORT_THEN_LONG,
    ),
    (
        {"position_size": 1.0},
        {"commission": {"fixed": 1.0, "per_share": 0.005, "minimum": 2.0}, "slippage": {"bps": 3.0}},
        SHORT_THEN_LONG,
    ),
    (
        {"position_size": 0.75, "fractional_shares": False},
        {"commission": {"rate": 0.001, "minimum": 1.0}, "slippage": {"bps": 5.0, "range_fraction": 0.1}},
        HALF_THEN_REVERSE,
    ),
]


@pytest.mark.parametrize(("portfolio", "execution", "signals"), SIZING)
def test_fills_follow_the_readme_sizing_formula(tmp_path, portfolio, execution, signals):
    cfg = {
        "data": {"path": csv_of(tmp_path, OPENS, CLOSES, signals)},
        "plugins": [PLUGIN],
        "strategies": [{"type": "scripted_signal"}],
        "portfolio": {"initial_capital": 100_000, "allow_short": True, **portfolio},
        "execution": execution,
        "results_storage": "memory",
    }
    res = sweep.run(cfg, progress=False)
    ev = res.events.filter(event="FILL").sort("seq")
    written = sweep.load_config(cfg).execution  # the settings as written, defaults filled in
    ex = {k: float(written.value(f"commission.{k}")) for k in ("rate", "per_share", "fixed", "minimum")}
    ex |= {k: float(written.value(f"slippage.{k}")) for k in ("bps", "range_fraction")}
    close_fill = execution.get("fill") == "close"
    size = portfolio["position_size"]
    fractional = portfolio.get("fractional_shares", True)
    cash, pos, target = 100_000.0, 0.0, 0.0
    hi, lo = np.maximum(OPENS, CLOSES) + 1.0, np.minimum(OPENS, CLOSES) - 1.0
    expected = []
    for t, s in enumerate(signals[:-1]):
        if math.isnan(s) or s * size == target:
            continue
        target = s * size
        fill_bar = t if close_fill else t + 1
        price = CLOSES[t] if close_fill else OPENS[t + 1]
        qty, px, comm, cash = fill_by_hand(target, cash, pos, price, hi[t] - lo[t], ex, size, fractional)
        pos += qty
        expected.append((fill_bar, qty, px, comm, cash, pos))
    got = ev.select("bar", "qty", "price", "commission", "cash", "position").to_numpy()
    assert got.shape == (3, 6) and len(expected) == 3
    want = np.array(expected)
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    np.testing.assert_allclose(got[:, [1, 2, 3, 5]], want[:, [1, 2, 3, 5]], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[:, 4], want[:, 4], rtol=1e-9, atol=1e-9 * 100_000)  # cash: to 1e-9 of the account
    assert (got[:, 4] >= -1e-9).all()
    if size == 1.0 and fractional:  # all in: the cash is spent to the cent, on the reversal too
        longs = got[:, 5] > 0
        assert np.abs(got[longs, 4]).max() < 1e-6


# ------------------------------------------------------------------ no margin without leverage

REVERSAL_OPENS = [100.0, 100.0, 100.0, 110.0, 120.0, 121.0, 122.0]
REVERSAL_CLOSES = [100.0, 100.0, 105.0, 118.0, 121.0, 122.0, 122.0]
REVERSAL_SIGNALS = [0.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("fractional", [True, False])
def test_short_to_long_reversal_does_not_borrow(fractional):
    # short 100 at 99.95 (open 100, 5 bps), the price runs to 120, all-in long at 120.06: the old engine sized
    # the long from the equity at the open and left out the cover's commission and slippage: cash -18.00
    cfg = config(
        {"initial_capital": 10_000, "fractional_shares": fractional},
        {"commission": {"rate": 0.001, "minimum": 1.0}, "slippage": {"bps": 5.0}},
    )
    u = universe(REVERSAL_OPENS, REVERSAL_CLOSES, REVERSAL_SIGNALS)
    for f in fills(cfg, u):
        assert f[:, 0].tolist() == [2.0, 4.0]
        short, reversal = f
        assert short[5] < 0.0 < reversal[5]
        assert reversal[4] >= 0.0
        if fractional:  # all in: nothing left, nothing borrowed
            assert reversal[4] == pytest.approx(0.0, abs=1e-9)
            equity = short[4] + short[5] * 120.06  # at the fill price, less the order's commission
            assert reversal[5] * 120.06 == pytest.approx(equity - reversal[3], rel=1e-12)


def test_a_short_that_lost_everything_is_covered_in_full():
    # short 100 at 100 with 10,000; the price triples: covering costs more than the cash - it still fills
    cfg = config({"initial_capital": 10_000}, {"commission": {"rate": 0.001}})
    u = universe([100, 100, 100, 300, 300, 300], [100, 100, 250, 300, 300, 300], [0, -1, -1, 1, 1, 1])
    for f in fills(cfg, u):
        assert f[:, 0].tolist() == [2.0, 4.0]
        short, cover = f
        assert cover[1] == -short[1] and cover[5] == 0.0  # covered in full, no long bought (the equity is gone)
        assert cover[3] == pytest.approx(0.001 * cover[1] * 300.0)
        assert cover[4] == pytest.approx(short[4] - cover[1] * 300.0 - cover[3]) and cover[4] < -9_000.0


PRICE_STEPS = st.floats(-0.06, 0.06, allow_nan=False)
SETTINGS = st.fixed_dictionaries(
    {
        "initial_capital": st.sampled_from([1_000.0, 25_000.0, 100_000.0]),
        "position_size": st.sampled_from([0.3, 0.5, 0.9, 1.0]),
        "fractional_shares": st.booleans(),
        "fill": st.sampled_from(["next_open", "close"]),
        "rate": st.sampled_from([0.0, 0.0005, 0.01]),
        "per_share": st.sampled_from([0.0, 0.005, 0.5]),
        "fixed": st.sampled_from([0.0, 1.0, 9.0]),
        "minimum": st.sampled_from([0.0, 1.0, 20.0]),
        "bps": st.sampled_from([0.0, 5.0, 80.0]),
        "range_fraction": st.sampled_from([0.0, 0.1, 0.5]),
    }
)


@st.composite
def scenarios(draw):
    n = draw(st.integers(6, 50))
    signals = draw(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, NAN]), min_size=n, max_size=n))
    closes = 100.0 * np.exp(np.cumsum(draw(st.lists(PRICE_STEPS, min_size=n, max_size=n))))
    gaps = np.exp(np.array(draw(st.lists(PRICE_STEPS, min_size=n, max_size=n))))
    opens = np.r_[100.0, closes[:-1]] * gaps
    return opens, closes, signals


@settings(max_examples=150, deadline=None)
@given(bars=scenarios(), s=SETTINGS)
def test_cash_stays_positive_without_leverage(bars, s):
    """After every fill, cash >= 0 unless the account is under water (a cover that costs more than it has)."""
    opens, closes, signals = bars
    execution = {
        "fill": s["fill"],
        "commission": {k: s[k] for k in ("rate", "per_share", "fixed", "minimum")},
        "slippage": {"bps": s["bps"], "range_fraction": s["range_fraction"]},
    }
    portfolio = {k: s[k] for k in ("initial_capital", "position_size", "fractional_shares")}
    fast, ref = fills(config(portfolio, execution), universe(opens, closes, signals))
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-9)
    for f in (fast, ref):
        equity_after = f[:, 4] + f[:, 5] * f[:, 2]  # cash + position at the fill price
        solvent = np.minimum.accumulate(equity_after) > 0.0  # the equity stayed positive so far
        note(f"fills (bar, qty, price, commission, cash, position):\n{f}")
        assert (f[solvent, 4] >= -1e-9).all()


# ------------------------------------------------------------------ the trailing stop: best close since entry


def exit_by_hand(opens, closes, entry_bar, pct, side, fill_close):
    """The bar a trailing stop closes the trade at, from the closes since entry (the entry bar's on)."""
    best = closes[entry_bar]
    for t in range(entry_bar + 1, len(closes)):
        price = closes[t] if fill_close else opens[t]
        if fill_close:  # a close fill checks at the close, which is then already a close since entry
            best = max(best, closes[t]) if side > 0 else min(best, closes[t])
        if (side > 0 and price <= best * (1 - pct)) or (side < 0 and price >= best * (1 + pct)):
            return t
        best = max(best, closes[t]) if side > 0 else min(best, closes[t])
    return None


# long entered at the open of bar 2 far above the closes that follow: from the entry fill (120) the stop
# would fire at once (bar 3); from the best close since entry it fires when an open gives back pct of 104
TRAIL_OPENS = [100.0, 100.0, 120.0, 101.0, 103.0, 98.5, 99.0, 97.0, 97.0]
TRAIL_CLOSES = [100.0, 100.0, 100.0, 104.0, 100.0, 99.0, 99.0, 97.0, 97.0]
TRAIL_SIGNALS = [0.0, 1.0, NAN, NAN, NAN, NAN, NAN, NAN, NAN]


@pytest.mark.parametrize(("pct", "exit_bar"), [(0.05, 5), (0.06, 7), (0.1, None)])
@pytest.mark.parametrize("side", [1, -1])
def test_trailing_stop_measures_from_the_best_close(pct, exit_bar, side):
    opens, closes = TRAIL_OPENS, TRAIL_CLOSES
    if side < 0:  # the mirror image: a short entered far below the closes that follow
        opens, closes = [200.0 - x for x in opens], [200.0 - x for x in closes]
    signals = [s * side if not math.isnan(s) else s for s in TRAIL_SIGNALS]
    want = exit_by_hand(opens, closes, 2, pct, side, fill_close=False)
    if side > 0:
        assert want == exit_bar  # the scenario is what the comment says
    risk = [{"type": "trailing_stop", "parameters": {"pct": pct}}]
    for f in fills(config({"initial_capital": 10_000}, {}, risk), universe(opens, closes, signals)):
        assert f[0, 0] == 2 and np.sign(f[0, 5]) == side
        if want is None:
            assert len(f) == 1
        else:
            assert f[1:, 0].tolist() == [want] and f[1, 2] == opens[want] and f[1, 5] == 0.0


def test_trailing_stop_with_close_fills_starts_at_the_entry_close():
    # entered at the close of bar 1 (100) paying 5% slippage (105): the best close starts at 100, not 105;
    # from 105 the 4% stop would fire at bar 2's close (99); from 100 it fires once a close is 4% under 101
    opens = [100.0, 100.0, 99.0, 101.0, 97.0, 96.0]
    closes = [100.0, 100.0, 99.0, 101.0, 96.5, 96.0]
    signals = [0.0, 1.0, NAN, NAN, NAN, NAN]
    want = exit_by_hand(opens, closes, 1, 0.04, 1, fill_close=True)
    assert want == 4
    risk = [{"type": "trailing_stop", "parameters": {"pct": 0.04}}]
    cfg = config({"initial_capital": 10_000}, {"fill": "close", "slippage": {"bps": 500.0}}, risk)
    for f in fills(cfg, universe(opens, closes, signals)):
        assert f[:, 0].tolist() == [1.0, 4.0] and f[0, 2] == pytest.approx(105.0) and f[1, 5] == 0.0
