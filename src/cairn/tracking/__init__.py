"""Tracking: experiments, runs, what they log, search, and the stores behind them."""
