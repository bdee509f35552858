"""User config folders (`--config-dir`, DENSEBENCH_CONFIG_PATH) ahead of DenseBench's built-in configs."""
