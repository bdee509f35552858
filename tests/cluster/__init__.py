"""SLURM for real: a one-node test cluster (slurm.py) and the submitit_slurm path run on it."""
