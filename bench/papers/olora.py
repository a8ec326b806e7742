"""OLoRA: Orthonormal Low-Rank Adaptation of Large Language Models (arXiv 2406.01775)."""

from ..report.claims import Claim
from ..report.figures import Curves
from ..report.metrics import ACCURACY
from ..report.tables import TableRules
from .spec import PaperSpec

STAND_IN = "stories260K on ARC-Easy in LLM-Adapters' format, r 8 on all 7 projections, 120 steps (960 questions)"
OLORA, LORA = {"method.name": "olora"}, {"method.name": "lora"}

SPEC = PaperSpec(
    name="olora",
    title="OLoRA: Orthonormal Low-Rank Adaptation of Large Language Models (arXiv 2406.01775)",
    order=1,
    task_labels={"arc_challenge": "Arc-C", "arc_easy": "Arc-E", "boolq": "BoolQ", "hellaswag": "HellaSwag",
                 "openbookqa": "OBQA", "piqa": "PIQA"},
    experiments={
        "paper": ("olora_table1", "olora_table1_7b", "olora_fig2"),
        "small": ("olora",),
        "tiny": ("olora_table1", "olora_fig2"),
    },
    tables=TableRules(metrics={"final_score": ACCURACY}),
    figures={"fig2_fig3_eval_loss": Curves("fig2", "eval_loss", lambda r: f"{r.model_name}, r {r.cfg['method']['r']}",
                                           "OLoRA Figs. 2-3: eval loss, LoRA vs OLoRA", "eval loss")},
    claims=(
        Claim("faster-first-eval", "Figs. 2-3", "OLoRA converges faster: lower eval loss at the first evaluation",
              "olora", "first.eval_loss", (OLORA, LORA), ("OLoRA", "LoRA"), direction="less", unit="eval loss",
              stand_in=STAND_IN),
        Claim("faster-auc", "Figs. 2-3", "… and over the whole curve (mean eval loss over the evaluations)", "olora",
              "mean.eval_loss", (OLORA, LORA), ("OLoRA", "LoRA"), direction="less", unit="eval loss",
              stand_in=STAND_IN),
        Claim("final-loss", "Figs. 2-3", "… and at the end of training", "olora", "final.eval_loss", (OLORA, LORA),
              ("OLoRA", "LoRA"), direction="less", unit="eval loss", stand_in=STAND_IN),
        Claim("final-accuracy", "Table I", "OLoRA's final accuracy beats LoRA's", "olora", "final.acc",
              (OLORA, LORA), ("OLoRA", "LoRA"), unit="accuracy (lm-eval acc)", stand_in=STAND_IN),
    ),
    notes=(
        "One task (ARC-Easy) and one rank stand in for the paper's pooled commonsense training and its model × rank "
        "grid: the runs are 10 seeds each (5 left the final-accuracy claim at ~12 pairs to resolve), which is what fit "
        "the budget. A 260K-parameter story model answers ARC "
        "near chance, so the eval-loss claims carry the weight.",
        "Table I's cells read LLM-Adapters' generation accuracy (gen_acc: the option the model names in its "
        "generated answer), the paper's protocol; the final-accuracy claim reads lm-eval's acc on the same questions "
        "(the option the model finds most likely), which is not zero where a small model never writes an option name.",
    ),
)
