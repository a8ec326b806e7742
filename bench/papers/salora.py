"""SaLoRA: Structure-Aware Low-Rank Adaptation (Mathematics 11(20) 4317)."""

from ..claims import Claim
from . import PaperSpec

STAND_IN = "stories260K body + classification head on SST-2 (5,000 train / 872 dev), r 8 on all 7 projections"
CORPUS = {"task.name": "c4"}
SST2 = {"task.name": "sst2"}   # the density runs; the corpus runs at b 0.5 must not pair with them
CORPUS_STAND_IN = ("stories260K adapting to the shared-text corpus (held-out loss), r 8 on all 7 projections, "
                   "500 steps")
SALORA = {"method.name": "salora", "method.use_lagrangian": (True, None), "method.beta": 0.1}  # None: the key unset (default on)


def _density(b: float) -> Claim:
    return Claim(f"density-b{b}", "Sec. 3 / Fig. 5", f"The Lagrangian drives the expected density to the target "
                 f"b = {b} (within ±0.02)", "salora_density", "gap.density", ({**SALORA, "method.target_density": b},),
                 (f"density − b, b {b}",), direction="within", margin=0.02, unit="density", where=SST2,
                 stand_in=STAND_IN)


SPEC = PaperSpec(
    name="salora",
    title="SaLoRA: Structure-Aware Low-Rank Adaptation (Mathematics 11(20) 4317)",
    task_labels={"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qnli": "QNLI", "qqp": "QQP", "rte_glue": "RTE",
                 "mnli": "MNLI", "stsb": "STS-B"},
    experiments={
        "paper": ("salora_table1", "salora_table1_baselines", "salora_table1_fft", "salora_ablation", "salora_sweeps", "salora_density"),
        "small": ("salora_density", "salora_ablation", "salora_baselines", "salora_fft"),
        "tiny": ("salora_table1", "salora_ablation", "salora_sweeps"),
    },
    figures={"fig4_rank_sweep": "salora_fig4", "fig5_density_sweep": "salora_fig5",
             "fig6_training_dynamics": "salora_fig6", "fig7_kept_rank": "salora_fig7"},
    claims=(
        *(_density(b) for b in (0.125, 0.25, 0.5, 0.75)),
        Claim("lambda-rises", "Fig. 6", "λ keeps rising through the gate window", "salora_density", "rise.lambda",
              (SALORA,), ("λ at end − λ at start",), pair_by=("seed", "method.target_density"), unit="λ", where=SST2,
              stand_in=STAND_IN),
        Claim("orthogonality-A", "Fig. 6", "‖AAᵀ − I‖²_F falls by orders of magnitude (here: by more than one)",
              "salora_density", "log10drop.orth_A", (SALORA,), ("log10(first / last)",), margin=1.0,
              pair_by=("seed", "method.target_density"), unit="orders of magnitude", where=SST2, stand_in=STAND_IN),
        Claim("orthogonality-B", "Fig. 6", "‖BᵀB − I‖²_F falls by orders of magnitude (here: by more than one)",
              "salora_density", "log10drop.orth_B", (SALORA,), ("log10(first / last)",), margin=1.0,
              pair_by=("seed", "method.target_density"), unit="orders of magnitude", where=SST2, stand_in=STAND_IN),
        Claim("no-lagrangian", "Table 3", "Without the Lagrangian (λ = 0) the density is not controlled: it ends more "
              "than 0.02 above b", "salora_ablation", "gap.density", ({"method.use_lagrangian": False},),
              ("density − b, λ = 0",), margin=0.02, unit="density", where=CORPUS, stand_in=CORPUS_STAND_IN),
        Claim("salora-vs-lora-loss", "Table 1", "SaLoRA (b 0.5) beats LoRA with half the rank budget kept (here: a "
              "lower held-out loss)", "salora_ablation", "final.eval_loss",
              ({**SALORA, "method.target_density": 0.5}, {"method.name": "lora"}), ("SaLoRA", "LoRA"),
              where=CORPUS, direction="less", unit="eval loss", stand_in=CORPUS_STAND_IN),
    ),
    notes=(
        "Two stand-in choices make the gates reach b inside a CPU-sized run: η_c = 0.05 (the paper: 0.01) and a gate "
        "window of steps 100-900 of 1,000 (the paper: ~30% of training). With the paper's η_c the Lagrangian force "
        "2λ(C − b) fades as C nears b and λ grows by η_c·(C − b)² per step, so the approach is slow: measured here at "
        "η_c 0.01 over an 800-step window, the density ended at 0.24 / 0.31 / 0.53 for b 0.125 / 0.25 / 0.5 (3 seeds "
        "each, still falling); over a 450-step window, 0.33 at b 0.125. The paper's GLUE runs are thousands of steps.",
        "The b 0.125 claim is the closest to its margin (the slowest approach to b). Re-run on a second host (the "
        "same code, 2-3× slower, other rounding), its three runs ended at density 0.1299 / 0.1248 / 0.1303 against "
        "these records' 0.1284 / 0.1290 / 0.1352: held there too, 0.0033 [−0.004, 0.011] (seed 1's run had its "
        "evaluation batches ordered by length, which leaves training untouched). Length-grouped training batches "
        "(HF's group_by_length) would cut these runs' training by ~40% (random SST-2 batches are ~2/3 padding) and "
        "were declined: with them one seed at b 0.125 ended at 0.146, and that claim's interval, [−0.019, 0.035], "
        "left the ±0.02 margin.",
        "Fig. 4 (rank sweep) and the β = 0 row of Table 3 did not fit the small tier's budget (a SaLoRA run is "
        "1,000 steps, ~3.3 minutes with two runs sharing the 2 cores).",
        "SST-2 through a classification head stays at chance for stories260K (dev loss 0.68-0.69 against ln 2 = "
        "0.693, accuracy 0.49-0.57), so it carries the density runs (whose claims do not depend on the task) but "
        "cannot rank two methods: SaLoRA vs LoRA and the λ = 0 ablation run on the shared-text corpus instead.",
        "SaLoRA vs LoRA on the corpus: SaLoRA ends 0.29 nats above LoRA (3 seeds). Its task loss lags from the first "
        "steps (seed 1, step 100: 3.45 vs LoRA's 2.70) while the orthogonal term (β 0.1) drives ‖BᵀB − I‖² from 280 "
        "to 0.02 by step 200; that an orthonormal B fixes the update's scale at s = α/r where LoRA's grows from B = 0 "
        "is a likely reason on a 64-wide model, not tested here (the β = 0 row would test it).",
        "Table 1's baseline rows at the small tier (salora_baselines_small, salora_fft_small) run in the corpus "
        "setting of the ablation, beside its LoRA and SaLoRA runs, in the stand-in column \"c4 (stand-in task)\" "
        "(held-out loss; the task is the shared-text corpus). Every adapter baseline uses the adapters' learning rate "
        "3e-3, untuned per method (prompt and prefix tuning usually want far more), FT a tenth of it: read them as "
        "one setting, not as each method's best. The AdaLoRA rows were re-run with the current code (3695e5a; "
        "their earlier records predate AdaLoRA's fused forward, a rounding-level change: the final eval loss moved "
        "by 0.00002-0.0013 on the three seeds) on a host 2-3× slower than the one behind the other records, with "
        "other runs sharing its 2 cores: 220-304 s per run against 92-96 s, which the compute line below counts.",
        "Prefix-tuning on RoBERTa (the paper-scale sweep) is the suite's own (methods/encoder_prefix.py, peft's "
        "parameterisation), as transformers 5's encoders take no past key values for peft's; at the small tier it "
        "runs on stories260K (a decoder) through peft.",
        "Table 2 (Yelp/GYAFC style transfer) has no CPU counterpart. Table 4's cost comparison (step time and memory, "
        "LoRA against SaLoRA in its gate window, by batch size on RoBERTa-base/-large shapes) is measured by "
        "`make perf-salora` into [table4_perf.md](table4_perf.md), on this CPU at sequence 64 and batch 4-16: "
        "SaLoRA 0.99-1.06× LoRA's time and 1.007-1.025× its memory.",
    ),
)
