"""Plotly figures drawn from Polars frames; no computation beyond reshaping for display.

One module per subject (runs, ratings, bench, memory); import figures from them.
"""
