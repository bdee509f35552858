"""`timm_hub`: any timm model by name, including `hf-hub:org/name` releases, built without a class here.

The architecture comes from timm: `timm_name` (a timm model name) or, when that is null, the
`config.json` of the Hugging Face repository `hub.repo_id` (timm's `hf-hub:` models; read from the
local cache with HF_HUB_OFFLINE=1). The weights follow DenseBench's usual precedence (`model.weights`,
the HF cache, the hub with HF_TOKEN) and load strictly; the only keys left out are those of the
classifier head timm names in the model's pretrained config (the dense path drops the head).
Normalisation is the pretrained config's unless the YAML sets `mean`/`std`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import Tensor

from densebench.backbones import BACKBONES
from densebench.backbones.base import Backbone
from densebench.backbones.families._user import TimmConvention
from densebench.backbones.weights import check_position_grid, first_line
from densebench.errors import ConfigError


def timm_model_id(cfg: DictConfig) -> tuple[str, str]:
    """(timm.create_model name, the config key it came from)."""
    if cfg.get("timm_name"):
        return str(cfg.timm_name), "model.timm_name"
    hub = cfg.get("hub") or {}
    if not hub.get("repo_id"):
        raise ConfigError(
            f"model '{cfg.get('name')}': family timm_hub needs model.timm_name (a timm model name) or "
            "model.hub.repo_id (a Hugging Face repository with a timm config.json)"
        )
    revision = f"@{hub.get('revision')}" if hub.get("revision") else ""
    return f"hf-hub:{hub.get('repo_id')}{revision}", "model.hub.repo_id"


class TimmHub(TimmConvention):
    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        import timm

        self._cfg = cfg
        self.hub_id, self.origin_key = timm_model_id(cfg)
        try:
            self.model = timm.create_model(self.hub_id, pretrained=False, num_classes=0, dynamic_img_size=True, **arch)
        except TypeError as exc:  # a model class without dynamic_img_size (CNNs, fixed-size models)
            raise ConfigError(
                f"{self.origin_text}: timm cannot build it with dynamic_img_size ({first_line(exc)}); DenseBench needs a "
                "patch-token ViT that takes any multiple of its patch size (or fix model.arch)"
            ) from None
        except RuntimeError as exc:
            raise ConfigError(
                f"{self.origin_text}: {first_line(exc)}; check the name against timm.list_models()"
            ) from None
        except OSError as exc:  # config.json neither cached nor downloadable
            raise ConfigError(
                f"{self.origin_text}: cannot read the repository's config.json ({first_line(exc)}); put the repository in "
                "the Hugging Face cache, unset HF_HUB_OFFLINE, or name a timm architecture in model.timm_name"
            ) from None
        pretrained = getattr(self.model, "pretrained_cfg", None) or {}
        self._classifier = pretrained.get("classifier")
        self._finish(cfg, self._timm_geometry(), pretrained.get("mean"), pretrained.get("std"), None)

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Leave out the classifier head (named by timm's pretrained config); fail clearly on another grid."""
        head = f"{self._classifier}." if self._classifier else None
        state = {k: v for k, v in state_dict.items() if head is None or not k.startswith(head)}
        pos = getattr(self.model, "pos_embed", None)
        if "pos_embed" in state and pos is not None:
            prefix = 0 if getattr(self.model, "no_embed_class", False) else self.num_prefix_tokens
            check_position_grid(
                self._cfg,
                "pos_embed",
                state["pos_embed"].shape[-2] - prefix,
                pos.shape[-2] - prefix,
                self.patch_size,
                "img_size",
            )
        return state

    def origin_record(self) -> dict[str, Any]:
        return {"hub_id": self.hub_id}


@BACKBONES.register("timm_hub")
def build_timm_hub(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return TimmHub(cfg, arch)
