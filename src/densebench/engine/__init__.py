"""Training and evaluation engine: plain functions driven by a resolved config."""
