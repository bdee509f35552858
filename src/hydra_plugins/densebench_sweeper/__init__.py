"""DenseBench's Hydra sweeper (`hydra/sweeper=densebench`, the default in configs/config.yaml)."""
