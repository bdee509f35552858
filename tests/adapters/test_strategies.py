"""Every strategy × every model: what trains, what stays fixed, what a checkpoint must hold."""

from __future__ import annotations

import torch

from densebench.backbones.blocks import block_stacks
from densebench.engine.optim import param_groups
from densebench.model import Segmenter

from .support import INPUT_HW, NUM_CLASSES, build_fresh, make_cfg


def _split(model: Segmenter) -> tuple[set[str], set[str], set[str]]:
    """Parameter names: original backbone weights, parameters the adapter adds, decoder."""
    own = {f"adapter.{n}" for n, _ in model.adapter.own_parameters()}
    names = {n for n, _ in model.named_parameters()}
    decoder = {n for n in names if n.startswith("decoder.")}
    return names - own - decoder, own, decoder


def test_output_has_the_input_size(stepped, model_name, strategy):
    assert stepped(model_name, strategy).logits_shape == (2, NUM_CLASSES, *INPUT_HW)


def test_one_step_changes_exactly_the_parameters_that_got_a_gradient(stepped, model_name, strategy):
    s = stepped(model_name, strategy)
    changed = {n for n, p in s.model.named_parameters() if not torch.equal(p, s.before[n])}
    nonzero_grad = {n for n, g in s.grads.items() if g is not None and g.abs().sum() > 0}
    assert changed == nonzero_grad


def test_one_step_trains_the_backbone_only_under_full(stepped, model_name, strategy):
    s = stepped(model_name, strategy)
    backbone, _, _ = _split(s.model)
    changed = {n for n in backbone if not torch.equal(s.model.get_parameter(n), s.before[n])}
    if strategy == "full":
        assert changed, "full fine-tuning left every backbone weight unchanged"
        assert not torch.equal(s.backbone_after, s.backbone_before)
    else:
        assert not changed, f"{strategy} changed backbone weights, e.g. {sorted(changed)[:3]}"


def test_frozen_backbone_computes_bit_identical_features_after_a_step(stepped, model_name, frozen_path):
    s = stepped(model_name, frozen_path)
    assert torch.equal(s.backbone_after, s.backbone_before)


def test_low_rank_step_changes_backbone_outputs_but_not_base_weights(stepped, model_name, low_rank):
    s = stepped(model_name, low_rank)
    own = dict(s.model.adapter.own_parameters())
    assert own, "no LoRA parameters were injected"
    # peft initialises B = 0, so the first step moves B (and DoRA's magnitudes) while A's gradient is still 0.
    moved = {n for n, p in own.items() if not torch.equal(p, s.before[f"adapter.{n}"])}
    expected = {n for n in own if "lora_B" in n or "lora_magnitude_vector" in n}
    assert moved == expected
    assert not torch.equal(s.backbone_after, s.backbone_before)


def test_every_added_and_decoder_parameter_trains(stepped, model_name, strategy):
    s = stepped(model_name, strategy)
    _, own, decoder = _split(s.model)
    for name in own | decoder:
        assert s.model.get_parameter(name).requires_grad, name
        assert s.grads[name] is not None, f"{name} got no gradient: it is not on the forward path"
    if strategy in ("cnn", "transformer"):
        unchanged = {n for n in own if torch.equal(s.model.get_parameter(n), s.before[n])}
        assert not unchanged, f"adapter parameters did not train, e.g. {sorted(unchanged)[:3]}"


def test_frozen_paths_run_the_backbone_in_eval_mode_without_a_graph(model_name, frozen_path):
    model = build_fresh(make_cfg(model_name, frozen_path), seed=0)
    (_, stack), *_ = block_stacks(model.adapter.backbone)
    seen = []

    def record(block, args, out):  # some families return (hidden_states, ...) from a block
        hidden = out[0] if isinstance(out, tuple) else out
        seen.append((block.training, hidden.requires_grad))

    stack[-1].register_forward_hook(record)
    model.train()
    model(torch.randn(1, 3, *INPUT_HW)).sum().backward()
    assert seen == [(False, False)]


def test_parameter_counts_split_backbone_adapter_and_decoder(stepped, model_name, strategy):
    model = stepped(model_name, strategy).model
    counts = model.parameter_counts()
    assert counts["backbone_trainable"] == (counts["backbone_total"] if strategy == "full" else 0)
    assert (counts["adapter"] > 0) == (strategy not in ("frozen", "full"))
    assert counts["adapter_trainable"] == counts["adapter"]
    assert counts["trainable_total"] == counts["backbone_trainable"] + counts["adapter_trainable"] + counts["decoder"]
    assert counts["total"] == counts["backbone_total"] + counts["adapter"] + counts["decoder"]


def test_optimizer_groups_hold_every_trainable_parameter_once(stepped, model_name, strategy):
    s = stepped(model_name, strategy)
    grouped = [id(p) for g in param_groups(s.model, make_cfg(model_name, strategy)) for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in s.model.parameters() if p.requires_grad)


def test_checkpoint_on_a_fresh_model_reproduces_predictions(stepped, model_name, strategy, tmp_path):
    s = stepped(model_name, strategy)
    torch.save(s.model.trainable_state_dict(), tmp_path / "best.pt")
    fresh = build_fresh(make_cfg(model_name, strategy), seed=1)
    s.model.eval()
    fresh.eval()
    with torch.no_grad():
        expected = s.model(s.x)
        assert not torch.equal(fresh(s.x), expected), "fresh model already agrees: the test cannot fail"
        fresh.load_trainable_state_dict(torch.load(tmp_path / "best.pt", weights_only=True))
        assert torch.equal(fresh(s.x), expected)
