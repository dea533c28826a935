"""The portfolio state row that risk validators read.

The portfolio bank keeps one row per combination; a validator gets that row
as a float64 array and indexes it with these constants.  Quantities are in
shares (negative = short), money in the account currency.

HIGH_SINCE_ENTRY and LOW_SINCE_ENTRY are the highest and lowest bar close of
the open trade: the closes of the entry bar and every bar after it up to the
last completed one - never the entry fill price.  A fill at the open is
followed by its bar's close, which is the first; a ``fill: close`` entry
happens at its bar's close, which is the first (the close itself, before
slippage).  A validator never sees a trade before its first close.
"""

CASH = 0  # cash balance
POSITION = 1  # shares held (signed)
AVG_PRICE = 2  # average entry price of the open position (0 when flat)
EQUITY = 3  # cash + position * last price
PEAK_EQUITY = 4  # highest equity seen so far
HIGH_SINCE_ENTRY = 5  # highest close since entry, the entry bar's included (see above)
LOW_SINCE_ENTRY = 6  # lowest close since entry, the entry bar's included
BARS_IN_TRADE = 7  # bars since the position was opened
INITIAL_CAPITAL = 8  # starting equity
N_STATE = 9

FIELDS = (
    "cash",
    "position",
    "avg_price",
    "equity",
    "peak_equity",
    "high_since_entry",
    "low_since_entry",
    "bars_in_trade",
    "initial_capital",
)
