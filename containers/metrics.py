"""Names, directions and meanings of the metrics every combination gets."""

from __future__ import annotations

METRICS: dict[str, tuple[str, str]] = {
    "total_return": ("max", "final equity / initial capital - 1"),
    "cagr": ("max", "compound annual growth rate over the scored bars"),
    "sharpe": ("max", "annualised mean / std of bar returns (risk-free 0)"),
    "sortino": ("max", "annualised mean / downside deviation of bar returns"),
    "max_drawdown": ("min", "largest peak-to-trough fall of equity, as a fraction"),
    "max_drawdown_duration": ("min", "longest time below a previous peak, in bars"),
    "calmar": ("max", "cagr / max_drawdown"),
    "win_rate": ("max", "share of closed trades with positive net P&L"),
    "profit_factor": ("max", "gross profit / gross loss of closed trades"),
    "trades": ("max", "number of closed trades"),
    "avg_trade": ("max", "mean net P&L per closed trade, in currency"),
    "avg_trade_return": ("max", "mean net return per closed trade"),
    "exposure": ("max", "share of scored bars with an open position"),
    "turnover": ("min", "traded value / average equity"),
    "final_equity": ("max", "equity at the last bar"),
    "total_commission": ("min", "commission paid"),
}

OBJECTIVE_DEFAULT = "sharpe"
