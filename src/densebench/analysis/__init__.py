"""Analyses beyond the result tables: token statistics, input-size sweeps, FLOPs, prediction galleries.

`densebench analyze tokens|sizes|flops` (see docs/analysis.md); galleries are written by every run.
"""
