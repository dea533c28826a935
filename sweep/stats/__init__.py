"""Overfitting statistics over per-block returns of every combination of a sweep.

- ``blocks``: which bars make up each block (a day, a week, N bars);
- ``dsr``: probabilistic and deflated Sharpe ratios (Bailey & Lopez de Prado 2012, 2014);
- ``cscv``: probability of backtest overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, Lopez de Prado & Zhu 2016);
- ``spa``: White's Reality Check and Hansen's SPA test with the stationary bootstrap,
  streamed over chunks of combinations.

Everything here is pure computation on numpy arrays; ``sweep.overfitting``
puts it together for a phase of a run.
"""
