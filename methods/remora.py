"""ReMoRA (MoRA paper §5.3): MoRA merged and restarted every ``restart_every`` steps with a zero M; for
the sharing operator the input/output grouping alternates between restarts (the paper's g / g′)."""

from __future__ import annotations

from .cost import PerfVariant
from .mora import MoRA, MoraLinear
from .restart import ParamSwap, PeriodicRestart


class ReMoRA(PeriodicRestart, MoRA):
    name = "remora"
    label = "ReMoRA"
    peft_lora_export = False  # each restart's M under its own grouping: exported merged

    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        return [PerfVariant(cls.name, {"mora_type": "sharing"})]

    def next_link(self, layer: MoraLinear, link_index: int) -> list[ParamSwap]:
        (M,) = layer.reset_link()  # zeroed in place: the same parameter, its optimizer state dropped
        return [(M, M)]
