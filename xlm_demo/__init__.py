"""Explore xlm-clm-ende-1024, the English/German causal XLM, in a browser."""
