"""Reading results: every run's metrics.json (or error.json) under run directories, and published JSONs.

Both become one long table, `Results.values`: a row per (run, metric) tagged with its source, so the
user's runs and the published results flow through the same tables and statistics. A run that did
not finish is never dropped silently: it becomes a `Problem` (failed, unfinished or unreadable).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from densebench.report.identity import Defaults, Identity, identify, label
from densebench.errors import DenseBenchError
from densebench.names import Catalog

RUNS, PUBLISHED = "runs", "published"
RUN_DIR_NAME = re.compile(r"^seed(?P<seed>\d+)(?:-(?P<digest>[0-9a-f]{8}))?$")
KEY_COLUMNS = ["source", "dataset", "model", "strategy", "variant", "protocol", "axes"]
# value: the run's point estimate (what `densebench run` printed); published rows: the paper's bootstrap mean
VALUE_COLUMNS = [
    "run",
    *KEY_COLUMNS,
    "seed",
    "metric",
    "value",
    "point",
    "boot_mean",
    "ci_lower",
    "ci_upper",
    "input_size",
    "adapter_rank",
    "params",
]
PER_CLASS_COLUMNS = [
    "run",
    *KEY_COLUMNS,
    "seed",
    "input_size",
    "adapter_rank",
    "params",
    "class",
    "class_index",
    "measure",
    "value",
]


@dataclass
class Problem:
    """A run without usable metrics: `failed` (error.json), `unfinished` or `unreadable`."""

    status: str
    dataset: str
    model: str
    strategy: str
    seed: int | None
    run_dir: str
    error: str


@dataclass
class Results:
    values: pd.DataFrame  # VALUE_COLUMNS, one row per (run, metric)
    per_class: pd.DataFrame  # run + KEY_COLUMNS + seed, class, class_index, measure, value
    instance: pd.DataFrame  # like values, for instance metrics (test.instance)
    problems: list[Problem] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> metrics.json document
    shared: dict[str, str] = field(default_factory=dict)  # kind -> settings every run shares (left out of labels)

    def sources(self) -> list[str]:
        return [s for s in (PUBLISHED, RUNS) if s in set(self.values["source"])]

    @classmethod
    def empty(cls) -> Results:
        return cls(
            pd.DataFrame(columns=VALUE_COLUMNS),
            pd.DataFrame(columns=PER_CLASS_COLUMNS),
            pd.DataFrame(columns=VALUE_COLUMNS),
        )

    def with_values(self, rows: pd.DataFrame) -> Results:
        """These results plus more value rows (e.g. published ones)."""
        values = rows if self.values.empty else pd.concat([self.values, rows], ignore_index=True)
        return Results(values, self.per_class, self.instance, self.problems, self.details, self.shared)


def _num(value: Any) -> float:
    """JSON number (or null) as float; NaN for anything missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _instance_metrics(block: Any) -> dict[str, tuple[float, float, float]]:
    """{metric: (point estimate, ci_lower, ci_upper)} from a `test.instance` block (the bootstrap mean
    where a metric has no point estimate).

    Reads the layout of the semantic metrics ({metrics: {k: v}, bootstrap: {metrics: {k: {mean, ...}}}})
    and also a flat one ({k: v} or {k: {mean, ci_lower, ci_upper}}), where integers (counts such as
    n_images) are not metrics.
    """
    if not isinstance(block, dict):
        return {}
    if isinstance(block.get("metrics"), dict):
        point = block["metrics"]
        boot = (block.get("bootstrap") or {}).get("metrics") or {}
    else:
        point = {k: v for k, v in block.items() if isinstance(v, float)}
        boot = {k: v for k, v in block.items() if isinstance(v, dict) and "mean" in v}
    out = {}
    for key in dict.fromkeys([*point, *boot]):
        b = boot.get(key) or {}
        value = _num(point[key]) if key in point else _num(b.get("mean"))
        out[key] = (value, _num(b.get("ci_lower")), _num(b.get("ci_upper")))
    return out


def _identify(run_dir: Path) -> tuple[str, str, str, int | None]:
    """(dataset, model, strategy, seed) of a run directory without metrics: its config, else its path."""
    parts = run_dir.parts
    dataset, model, strategy = parts[-4:-1] if len(parts) >= 4 else ("?", "?", "?")
    match = RUN_DIR_NAME.match(run_dir.name)
    seed = int(match.group("seed")) if match else None
    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        try:
            cfg = yaml.safe_load(config_path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            cfg = {}
        if isinstance(cfg, dict):
            dataset = str((cfg.get("dataset") or {}).get("name") or dataset)
            model = str((cfg.get("model") or {}).get("name") or model)
            strategy = str((cfg.get("adapter") or {}).get("name") or strategy)
            seed = int(cfg["seed"]) if isinstance(cfg.get("seed"), int) else seed
    return dataset, model, strategy, seed


def _error_line(path: Path) -> str:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"unreadable error.json ({exc})"
    if isinstance(doc, dict) and ("type" in doc or "message" in doc):
        message = str(doc.get("message", "")).strip().splitlines()
        return f"{doc.get('type', 'Error')}: {message[0] if message else ''}".strip()
    return json.dumps(doc)[:200]


def _problem(status: str, run_dir: Path, error: str) -> Problem:
    dataset, model, strategy, seed = _identify(run_dir)
    return Problem(status, dataset, model, strategy, seed, str(run_dir), error)


def _read_metrics(path: Path) -> dict[str, Any] | str:
    """The metrics.json document, or why it cannot be used."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"unreadable metrics.json ({exc})"
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        return f"metrics.json schema_version {version!r} is not 1; upgrade densebench to read it"
    if doc.get("status") != "complete" or not isinstance(doc.get("run"), dict) or not isinstance(doc.get("test"), dict):
        return "metrics.json lacks status 'complete', a run block or a test block"
    return doc


def find_runs(dirs: list[Path], exclude: Path | None = None) -> tuple[list[tuple[Path, dict[str, Any]]], list[Problem]]:
    """Finished runs (run dir, metrics document) and problem runs under the given directories."""
    finished: dict[Path, dict[str, Any]] = {}
    problems: dict[Path, Problem] = {}
    for root in dirs:
        if not root.is_dir():
            raise DenseBenchError(
                f"runs directory {root} not found; pass a folder that holds run directories (e.g. outputs/)"
            )
        for path in sorted(root.rglob("metrics.json")):
            run_dir = path.parent.resolve()
            if exclude is not None and run_dir.is_relative_to(exclude):
                continue
            doc = _read_metrics(path)
            if isinstance(doc, str):
                problems[run_dir] = _problem("unreadable", run_dir, doc)
            else:
                finished[run_dir] = doc
        for path in sorted(root.rglob("error.json")):
            run_dir = path.parent.resolve()
            if run_dir not in finished and run_dir not in problems:
                problems[run_dir] = _problem("failed", run_dir, _error_line(path))
        for path in sorted(root.rglob("config.yaml")):
            run_dir = path.parent.resolve()
            if RUN_DIR_NAME.match(run_dir.name) and run_dir not in finished and run_dir not in problems:
                problems[run_dir] = _problem(
                    "unfinished", run_dir, "no metrics.json or error.json (running, or stopped)"
                )
    return sorted(finished.items()), sorted(
        problems.values(), key=lambda p: (p.dataset, p.model, p.strategy, p.run_dir)
    )


def _mapping(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """`doc[key]` when it is a mapping, else {} (older or hand-written metrics.json files)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _shared(identities: list[Identity], kind: str) -> frozenset[tuple[str, Any]]:
    sets = [i.settings[kind] for i in identities]
    return frozenset.intersection(*sets) if sets else frozenset()


def load_runs(
    dirs: list[Path], catalog: Catalog, exclude: Path | None = None, defaults: Defaults | None = None
) -> Results:
    """Every finished run under `dirs` as rows; display names and published keys recorded in runs are learned.

    Each row carries what the run is about (identity.py): `variant` (model-entry settings), the dataset
    with its own settings (`glas [dataset.min_side=96]` where runs of one dataset differ in them),
    `protocol` and ablation `axes`. Settings every run shares (per dataset for dataset settings) tell no
    runs apart and are left out of these labels; `Results.shared` names them.
    """
    finished, problems = find_runs(dirs, exclude)
    defaults = defaults or Defaults()
    ids = {run_dir: identify(doc, defaults) for run_dir, doc in finished}
    everyone = list(ids.values())
    shared = {kind: _shared(everyone, kind) for kind in ("model", "protocol", "axis")}
    by_dataset: dict[str, list[Identity]] = {}
    for run_dir, doc in finished:
        by_dataset.setdefault(str(doc["run"]["dataset"]), []).append(ids[run_dir])
    dataset_shared = {d: _shared(group, "dataset") for d, group in by_dataset.items()}
    rows, class_rows, instance_rows, details = [], [], [], {}
    for run_dir, doc in finished:
        run, test = doc["run"], doc["test"]
        cfg, model_block = _mapping(doc, "config"), _mapping(doc, "model")
        run_id = str(run_dir)
        details[run_id] = doc
        catalog.learn("model", run["model"], model_block.get("display_name"), model_block.get("published_key"))
        for kind, group in (("dataset", "dataset"), ("strategy", "adapter")):
            block = _mapping(cfg, group)
            catalog.learn(kind, run[group], block.get("display_name"), block.get("published_key"))
        adapter_cfg = _mapping(cfg, "adapter")
        identity = ids[run_dir]
        dataset_settings = identity.label("dataset", dataset_shared[str(run["dataset"])])
        protocol = identity.label("protocol", shared["protocol"])
        views = (doc.get("feature_cache") or {}).get("train_views")  # a protocol change, shown even when shared
        if views and "train.feature_cache=" not in protocol:
            protocol = " ".join(filter(None, [protocol, f"train.feature_cache=views:{views}"]))
        base = {
            "run": run_id,
            "source": RUNS,
            "dataset": str(run["dataset"]) + (f" [{dataset_settings}]" if dataset_settings else ""),
            "model": str(run["model"]),
            "strategy": str(run["adapter"]),
            "variant": identity.label("model", shared["model"]),
            "protocol": protocol,
            "axes": identity.label("axis", shared["axis"]),
            "seed": int(run.get("seed") or 0),
            "input_size": _num(model_block.get("input_size")),
            "adapter_rank": _num(adapter_cfg.get("rank")),
            "params": _num((model_block.get("params") or {}).get("backbone_total")),
        }
        point = test.get("metrics") or {}
        boot = (test.get("bootstrap") or {}).get("metrics") or {}
        for key in dict.fromkeys([*point, *boot]):
            b = boot.get(key) or {}
            value = _num(point[key]) if key in point else _num(b.get("mean"))
            rows.append(
                {
                    **base,
                    "metric": key,
                    "value": value,
                    "point": _num(point.get(key)),
                    "boot_mean": _num(b.get("mean")),
                    "ci_lower": _num(b.get("ci_lower")),
                    "ci_upper": _num(b.get("ci_upper")),
                }
            )
        for index, (name, scores) in enumerate((test.get("per_class") or {}).items()):
            for measure, value in (scores or {}).items():
                class_rows.append(
                    {**base, "class": str(name), "class_index": index, "measure": measure, "value": _num(value)}
                )
        for key, (value, lo, hi) in _instance_metrics(test.get("instance")).items():
            instance_rows.append(
                {
                    **base,
                    "metric": key,
                    "value": value,
                    "point": value,
                    "boot_mean": math.nan,
                    "ci_lower": lo,
                    "ci_upper": hi,
                }
            )
    shared_labels = {k: label(v) for k, v in shared.items() if v}
    shared_labels.update({f"dataset {d}": label(v) for d, v in dataset_shared.items() if v})
    return Results(
        values=pd.DataFrame(rows, columns=VALUE_COLUMNS),
        per_class=pd.DataFrame(class_rows, columns=PER_CLASS_COLUMNS),
        instance=pd.DataFrame(instance_rows, columns=VALUE_COLUMNS),
        problems=problems,
        details=details,
        shared=shared_labels,
    )


def _shape_error(path: Path, where: str) -> DenseBenchError:
    return DenseBenchError(
        f"{path}: {where} is not in the published format {{dataset: {{model: {{metric: {{mean, ci_lower, ci_upper}}}}}}}}; "
        "pass --published a folder of per-strategy JSONs such as frozen.json, lora.json"
    )


def load_published(folder: Path, catalog: Catalog) -> pd.DataFrame:
    """Rows (VALUE_COLUMNS) of published results: one JSON per strategy, file stem = published strategy key."""
    if not folder.is_dir():
        raise DenseBenchError(
            f"--published {folder}: not a directory; point it at the folder of per-strategy JSONs (frozen.json, ...)"
        )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DenseBenchError(
            f"--published {folder}: no *.json files; expected one JSON per strategy (frozen.json, lora.json, ...)"
        )
    rows = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DenseBenchError(
                f"{path}: not readable JSON ({exc}); pass --published a folder of result JSONs"
            ) from exc
        if not isinstance(data, dict):
            raise _shape_error(path, "the top level")
        strategy = catalog.from_published("strategy", path.stem)
        for dataset_key, models in data.items():
            if not isinstance(models, dict):
                raise _shape_error(path, f"'{dataset_key}'")
            dataset = catalog.from_published("dataset", dataset_key)
            for model_key, metrics in models.items():
                if not isinstance(metrics, dict):
                    raise _shape_error(path, f"'{dataset_key}/{model_key}'")
                model = catalog.from_published("model", model_key)
                base = {
                    "run": f"{PUBLISHED}/{path.stem}/{dataset_key}/{model_key}",
                    "source": PUBLISHED,
                    "dataset": dataset,
                    "model": model,
                    "strategy": strategy,
                    "variant": "",
                    "protocol": "",
                    "axes": "",
                    "seed": math.nan,
                    "input_size": math.nan,
                    "adapter_rank": math.nan,
                    "params": catalog.published_params(model) or math.nan,
                }
                for metric, stats in metrics.items():
                    if not isinstance(stats, dict) or "mean" not in stats:
                        raise _shape_error(path, f"'{dataset_key}/{model_key}/{metric}'")
                    rows.append(
                        {
                            **base,
                            "metric": metric,
                            "value": _num(stats["mean"]),
                            "point": math.nan,
                            "boot_mean": _num(stats["mean"]),
                            "ci_lower": _num(stats.get("ci_lower")),
                            "ci_upper": _num(stats.get("ci_upper")),
                        }
                    )
    return pd.DataFrame(rows, columns=VALUE_COLUMNS)
