"""ReLoRA (Lialin et al., 2023), the MoRA paper's §5.3 pretraining baseline: LoRA merged and restarted
every ``restart_every`` steps (kaiming A, zero B, optimizer state reset)."""

from __future__ import annotations

from .lora import LoRA, LoraLinear
from .restart import ParamSwap, PeriodicRestart


class ReLoRA(PeriodicRestart, LoRA):
    name = "relora"
    label = "ReLoRA"

    def next_link(self, layer: LoraLinear, link_index: int) -> list[ParamSwap]:
        retired = [layer.lora_A, layer.lora_B]
        return list(zip(retired, layer.reset_link(self.r, self.scaling)))
