"""The suite's cases as data: (category, input, expected outcome). Tests are parametrised from these
lists and docs/reliability.md's outcome table is generated from them (`python -m tests.reliability.cases`),
so the table cannot drift from what is tested."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "exit 2, one line"  # the outcome of a user mistake: exit 2, one `error:` line, no traceback


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    given: str
    outcome: str  # what the test asserts, in words
    needles: tuple[str, ...] = ()  # what the one-line error must name

    def __str__(self) -> str:
        return self.id


def line(*needles: str) -> str:
    return f"{ERROR} naming " + ", ".join(f"`{n}`" for n in needles)


def _value(override: str, *needles: str) -> Case:
    return Case(override, "config values", f"`densebench run {override}`", line(*needles), needles)


CONFIG = [
    _value("train.batch_size=abc", "train.batch_size=abc", "an integer >= 1"),
    _value("train.batch_size=0", "train.batch_size=0", "an integer >= 1"),
    _value("train.batch_size=-1", "train.batch_size=-1", "an integer >= 1"),
    _value("train.batch_size=2.5", "train.batch_size=2.5", "an integer >= 1"),
    _value("train.lr=-1", "train.lr=-1", "a number > 0"),
    _value("train.lr=abc", "train.lr=abc", "a number > 0"),
    _value("train.lr=0", "train.lr=0", "a number > 0"),
    _value("train.epochs=0", "train.epochs=0", "an integer >= 1"),
    _value("train.accumulate=0", "train.accumulate=0", "an integer >= 1"),
    _value("train.weight_decay=-0.1", "train.weight_decay=-0.1", "a number >= 0"),
    _value("train.betas=[0.9]", "train.betas=[0.9]", "two numbers in [0, 1)"),
    _value("train.num_workers=-1", "train.num_workers=-1", "an integer >= 0"),
    _value("train.loss=focal", "train.loss=focal", "dice, ce, dice_ce"),
    _value("train.optimizer=sgd", "train.optimizer=sgd", "adam, adamw"),
    _value("train.augment=heavy", "train.augment=heavy", "paper, light, none"),
    _value("train.precision=fp8", "train.precision=fp8", "auto, bf16, fp16, fp32"),
    _value("train.select_metric=accuracy", "train.select_metric=accuracy", "Mean_Dice"),
    _value("seed=abc", "seed=abc", "an integer >= 0"),
    _value("seed=-1", "seed=-1", "an integer >= 0"),
    _value("device=bogus", "device=bogus", "auto, cpu, cuda or cuda:N"),
    _value("eval.mode=bogus", "eval.mode=bogus", "slide, resize"),
    _value("eval.blend=box", "eval.blend=box", "gaussian, uniform"),
    _value("eval.overlap=-0.5", "eval.overlap=-0.5", "[0, 1)"),
    _value("eval.overlap=1.0", "eval.overlap=1.0", "[0, 1)"),
    _value("eval.window_batch=-3", "eval.window_batch=-3", "an integer >= 0"),
    _value("eval.bootstrap.ci=1.5", "eval.bootstrap.ci=1.5", "(0, 1)"),
    _value("eval.instance.connectivity=6", "eval.instance.connectivity=6", "4, 8"),
    _value("input_size=-16", "input_size=-16", "an integer >= 1"),
    _value("input_size=abc", "input_size=abc", "an integer >= 1"),
    _value("input_size_target=0", "input_size_target=0", "an integer >= 1"),
    _value("progress=loud", "progress=loud", "auto, rich, plain, none"),
    _value("force=maybe", "force=maybe", "true or false"),
    _value("runtime.cpu_linear=mkl", "runtime.cpu_linear=mkl", "onednn, native"),
    _value("runtime.channels_last=2", "runtime.channels_last=2", "true or false"),
    Case(
        "lora-rank-0",
        "config values",
        "`adapter=lora adapter.rank=0`",
        line("adapter.rank=0", "an integer >= 1"),
        ("adapter.rank=0", "an integer >= 1"),
    ),
    Case(
        "lora-dropout-1.5",
        "config values",
        "`adapter=lora adapter.dropout=1.5`",
        line("adapter.dropout=1.5", "[0, 1)"),
        ("adapter.dropout=1.5", "[0, 1)"),
    ),
    Case(
        "cnn-width-0.3",
        "config values",
        "`adapter=cnn adapter.width_factor=0.3`",
        line("adapter.width_factor=0.3", "multiple of 32"),
        ("adapter.width_factor=0.3", "multiple of 32"),
    ),
    Case(
        "full-layer-decay-0",
        "config values",
        "`adapter=full adapter.layer_decay=0`",
        line("adapter.layer_decay=0", "(0, 1]"),
        ("adapter.layer_decay=0", "(0, 1]"),
    ),
]

# Overrides of the adapter cases above (their id is not an override).
ADAPTER_OVERRIDES = {
    "lora-rank-0": ["adapter=lora", "adapter.rank=0"],
    "lora-dropout-1.5": ["adapter=lora", "adapter.dropout=1.5"],
    "cnn-width-0.3": ["adapter=cnn", "adapter.width_factor=0.3"],
    "full-layer-decay-0": ["adapter=full", "adapter.layer_decay=0"],
}

NAMES = [
    Case(
        "model=nope",
        "config names and keys",
        "`model=nope`",
        line("unknown model 'nope'", "demo_vit"),
        ("unknown model 'nope'", "demo_vit"),
    ),
    Case(
        "dataset=nope",
        "config names and keys",
        "`dataset=nope`",
        line("unknown dataset 'nope'", "synthetic"),
        ("unknown dataset 'nope'", "synthetic"),
    ),
    Case(
        "adapter=nope",
        "config names and keys",
        "`adapter=nope`",
        line("unknown adapter 'nope'", "lora"),
        ("unknown adapter 'nope'", "lora"),
    ),
    Case(
        "train.bogus=1",
        "config names and keys",
        "`train.bogus=1` (no such key)",
        line("train.bogus", "no such setting", "+train.bogus=1"),
        ("train.bogus", "no such setting", "+train.bogus=1"),
    ),
    Case(
        "eval.overlapp=0.5",
        "config names and keys",
        "`eval.overlapp=0.5` (misspelt key)",
        line("eval.overlapp", "did you mean eval.overlap"),
        ("eval.overlapp", "did you mean eval.overlap"),
    ),
    Case(
        "train.lr",
        "config names and keys",
        "`train.lr` (no value)",
        line("train.lr", "key=value"),
        ("train.lr", "key=value"),
    ),
    Case(
        "input_size=100",
        "config names and keys",
        "`input_size=100` (not a multiple of the patch)",
        line("input_size=100", "patch size 8", "96 or 104"),
        ("input_size=100", "patch size 8", "96 or 104"),
    ),
]

DEVICE = [
    Case(
        "device=cuda",
        "device and precision",
        "`device=cuda` on a machine without CUDA",
        line("device=cuda", "device=cpu"),
        ("device=cuda", "no CUDA device", "device=cpu"),
    ),
    Case(
        "device=cuda:3",
        "device and precision",
        "`device=cuda:3` on a machine without CUDA",
        line("device=cuda:3", "device=cpu"),
        ("device=cuda:3", "device=cpu"),
    ),
    Case(
        "train.precision=fp16",
        "device and precision",
        "`train.precision=fp16` on CPU",
        line("train.precision=fp16", "fp32"),
        ("train.precision=fp16", "CUDA", "fp32"),
    ),
]


def all_cases() -> list[Case]:
    from tests.reliability import (
        test_data_files,
        test_faults,
        test_fingerprint,
        test_results,
        test_weights,
    )

    return [
        *CONFIG,
        *NAMES,
        *DEVICE,
        *test_data_files.CASES,
        *test_weights.CASES,
        *test_faults.CASES,
        *test_fingerprint.CASES,
        *test_results.CASES,
    ]


def table() -> str:
    """The outcome table of docs/reliability.md."""
    rows = ["| # | category | case | expected outcome (asserted) |", "|---|---|---|---|"]
    for i, case in enumerate(all_cases(), 1):
        rows.append(f"| {i} | {case.category} | {case.given} | {case.outcome} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
