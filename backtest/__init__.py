"""Scores exported factor files (IC tests, groups, top-k, correlations, enhancement).

Stands alone: reads factor parquet files and market data through the torch-free
``market`` package; it must never import torch or lightning (tested).
"""
