"""Chain of LoRA: Efficient Fine-tuning of Language Models via Residual Learning (arXiv 2401.04151)."""

from ..claims import Claim
from . import PaperSpec

STAND_IN = "stories260K, MeZO's SST-2 protocol (500 train / 100 dev / 500 test), r 8 on q_proj and v_proj, 5 epochs"
LENGTH1 = {"method.knots": []}
LENGTH2 = {"method.knots": [0.6], "method.ranks": None}
LENGTH3 = {"method.knots": [0.4, 0.7]}
STEP_DOWN = {"method.knots": [0.6], "method.ranks": [8, 2]}

SPEC = PaperSpec(
    name="cola",
    title="Chain of LoRA: Efficient Fine-tuning of Language Models via Residual Learning (arXiv 2401.04151)",
    task_labels={"sst2_mezo": "SST-2", "wsc": "WSC", "boolq_mezo": "BoolQ", "cb": "CB", "rte": "RTE", "wic": "WIC",
                 "multirc": "MultiRC"},
    experiments={
        "paper": ("cola_table2", "cola_chain", "cola_stepdown"),
        "small": ("cola_chain", "cola_stepdown"),
        "tiny": ("cola_table2", "cola_chain", "cola_stepdown"),
    },
    figures={"fig2_chain_length": "cola_fig2"},
    claims=(
        Claim("cola-vs-lora", "Tables 1-2", "COLA (chain length 2) beats LoRA in the same epoch budget",
              "cola_chain", "final.acc", (LENGTH2, LENGTH1), ("COLA", "LoRA"), pair_by=("seed", "task.name"),
              unit="test accuracy", stand_in=STAND_IN),
        Claim("cola-vs-lora-loss", "Tables 1-2", "… measured by the held-out choice loss (lower is better)",
              "cola_chain", "final.eval_loss", (LENGTH2, LENGTH1), ("COLA", "LoRA"), direction="less",
              pair_by=("seed", "task.name"), unit="dev choice loss", stand_in=STAND_IN),
        Claim("chain-3-vs-1", "Fig. 2", "A longer chain (length 3) beats length 1", "cola_chain", "final.acc",
              (LENGTH3, LENGTH1), ("length 3", "length 1"), pair_by=("seed", "task.name"), unit="test accuracy",
              stand_in=STAND_IN),
        Claim("chain-3-vs-2", "Fig. 2", "Length 3 beats length 2", "cola_chain", "final.acc", (LENGTH3, LENGTH2),
              ("length 3", "length 2"), pair_by=("seed", "task.name"), unit="test accuracy", stand_in=STAND_IN),
        Claim("stepdown-flops", "Table 4", "Stepping the second link's rank down (8 → 2) costs fewer training FLOPs "
              "than keeping rank 8", "cola_stepdown", "result.train_flops", (STEP_DOWN, LENGTH2), ("8→2", "8→8"),
              direction="less", pair_by=("seed", "task.name"), unit="training FLOPs", stand_in=STAND_IN),
        Claim("stepdown-accuracy", "Table 3", "… at accuracy within 1 point of rank 8 throughout", "cola_stepdown",
              "final.acc", (STEP_DOWN, LENGTH2), ("8→2", "8→8"), direction="within", margin=0.01,
              pair_by=("seed", "task.name"), unit="test accuracy", stand_in=STAND_IN),
    ),
    notes=(
        "The small tier runs SST-2 only (MeZO's template), at 10 seeds (the paper: 5; 5 left the COLA-vs-LoRA "
        "effect at ~10 pairs to resolve): the other six tasks' runs did not fit the 30-minute budget of a paper. "
        "Step-down runs 8 → 2 only (8 → 4 and 8 → 6 did not fit).",
        "A 260K-parameter story model sits near chance on these tasks, so the dev choice loss is reported beside "
        "accuracy; chain length 1 is plain LoRA (labelled LoRA).",
    ),
)
