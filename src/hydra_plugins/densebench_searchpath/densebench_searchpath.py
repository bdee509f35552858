"""A Hydra search-path plugin: every composition (`densebench run`, `compose()` for bench, analyze,
data) sees the user's config folders first, so `my_configs/model/my_model.yaml` is `model=my_model`
and a user file named like a built-in one replaces it.

Hydra's own `--config-dir` does the same for one folder and one command; DenseBench's CLI takes
`--config-dir` for every command and keeps it in DENSEBENCH_CONFIG_PATH, which this plugin reads.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DenseBenchSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from densebench.config import user_config_dirs

        for path in reversed(user_config_dirs()):
            search_path.prepend(provider="densebench-user", path=f"file://{path}")
