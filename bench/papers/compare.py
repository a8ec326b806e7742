"""The comparison none of the four papers has: every method of the suite on one task per paper's family, at two
matched trainable-parameter budgets, over seeds (`make compare`, `python -m bench.compare`).

The grid is data: the families (one experiment per family, conf/experiment/compare_<family>[_small].yaml), the arms
(conf/arm/<arm>.yaml, each sized from ``compare.budget``) and the budgets/seeds the experiments sweep. Runs are
ordinary suite runs: resumable, skipped when finished, recorded into results/compare/records/ like the papers'.

The page (bench/report/leaderboard.py): per family and budget a leaderboard (mean and 95% t-interval over seeds;
the best arm in bold and every arm whose paired difference to it over seeds has an interval spanning zero marked
"tied"), the average rank over families per budget with a bootstrap interval (seeds resampled within each arm,
fixed generator: the page regenerates byte-identically), and Pareto plots of quality against trainable parameters,
step time and memory (the last two from results/perf.json, bench.perf's measurement at r 8).
"""

from __future__ import annotations

from ..report.leaderboard import arm_of, budget_of
from ..stats import t_interval
from .spec import ComparisonSpec, Family, Tuning

FAMILIES = (
    Family("memorisation", "Memorisation (MoRA)", "compare_uuid", "final.char_acc", "greater", "character accuracy",
           "stories260K memorising 64 UUID pairs", "LLaMA-2-7B memorising 10k UUID pairs (MoRA §3)", "fsdp4"),
    Family("pretraining", "Pretraining from scratch (MoRA)", "compare_pretrain", "final.perplexity", "less",
           "held-out perplexity", "tiny_llama (random init) on the shared corpus",
           "LLaMA-style 250M on C4 (MoRA §5.3)", "fp32"),
    Family("adaptation", "Continual adaptation to new text (OLoRA / COLA)", "compare_adapt", "final.eval_loss", "less",
           "held-out eval loss", "pretrained stories260K on the shared corpus",
           "LLaMA-2-7B on Alpaca instructions, held-out loss (OLoRA's 7B setting)", "fsdp4"),
    Family("classification", "Classification (SaLoRA / COLA)", "compare_classify", "final.acc", "greater", "accuracy",
           "stories260K + head on glue_source (4-way, chance 0.25)",
           "RoBERTa-base on SST-2 (SaLoRA Table 1)", "fp32"),
)
# Every method of the suite, in the page's order; labels as the papers print them.
ARMS = {
    "lora": "LoRA", "olora": "OLoRA", "cola": "COLA (chain of 2)", "salora": "SaLoRA", "mora_sharing": "MoRA (sharing)",
    "mora_truncation": "MoRA (truncation)", "mora_decoupling": "MoRA (decoupling)", "mora_rotation": "MoRA (rotation)",
    "relora": "ReLoRA", "remora": "ReMoRA", "dora": "DoRA", "loraplus": "LoRA+", "asylora": "AsyLoRA",
    "adalora": "AdaLoRA", "adapter_h": "Adapter^H", "adapter_p": "Adapter^P", "prefix": "Prefix", "prompt": "Prompt",
    "fft": "FFT",
}
REFERENCE = "fft"   # trains every weight: shown beside each budget's board, never ranked
NOT_RUN = {   # (arm, family key or "*" for every family) -> why it has no runs there
    ("prompt", "*"): "not run: prompt tuning trains 64 parameters per virtual token on the 64-wide stand-ins, so "
                     "matching LoRA's budget needs 90 tokens per rank (180 at budget 2, 722 at budget 8: beyond "
                     "stories260K's 512 positions, and several times the tasks' own text)",
    ("prefix", "classification"): "not run at the CPU tier: stories260K's classification model "
                                  "(LlamaForSequenceClassification) takes no past key values in transformers 5, so "
                                  "peft's prefixes cannot reach it, and the suite's own prefixes need an encoder's "
                                  "bidirectional attention (the paper-scale grid runs it on RoBERTa-base)",
}



# bench.perf's row for each arm (results/perf.json, r 8): the step-time and memory axes of the Pareto plots.
PERF_ROWS = {"salora": "salora (in window)", "adalora": "adalora (in window)", "mora_sharing": "mora (sharing)",
             "mora_truncation": "mora (truncation)", "mora_decoupling": "mora (decoupling)",
             "mora_rotation": "mora (rotation)", "cola": "cola (2 links)"}
BUDGET_NOTES = (
    "SaLoRA and AdaLoRA train twice the budget's rank and keep half of it (target density / budget ratio 0.5): the "
    "trainable column shows what they train, what they keep matches the budget.",
    "MoRA's r̂ = ⌊√((d + k)·r)⌋ per module is rounded down (further for rotation's even blocks): its count is at or "
    "below LoRA's, by up to 13.5% at budget 2. The adapters' widths and the prefix length are integers matched "
    "to within 6% (tests/test_compare.py counts every arm).",
    "Pretraining trains the embeddings, head and norms in full beside every arm (MoRA §5.3); the peft-backed arms "
    "(DoRA, AdaLoRA, prefix) untie the tied head (peft's modules_to_save copies it), +32,768 trainable there.",
)


def density_interval(values: list[float]) -> str:
    center, low, high = t_interval(values)
    return f"{center:.3f} [{low:.3f}, {high:.3f}]" if len(values) > 1 else f"{center:.3f} [one seed: no interval]"


def density_notes(spec: ComparisonSpec, runs: list) -> list[str]:
    """Where SaLoRA's expected density ended (its kept budget assumes b = 0.5), per family and budget."""
    lines = []
    for fam in spec.families:
        by_budget: dict[int, list[float]] = {}
        for run in runs:
            if run.status == "ok" and run.feeds(fam.key) and arm_of(run.cfg) == "salora":
                density = (run.result.get("metrics") or {}).get("density")
                if density is not None:
                    by_budget.setdefault(budget_of(run.cfg), []).append(float(density))
        if by_budget:
            parts = ", ".join(f"budget {b}: {density_interval(v)} ({len(v)} seeds)" for b, v in sorted(by_budget.items()))
            lines.append(f"SaLoRA's final expected density on {fam.key} (target 0.5; mean [95% t-interval]): {parts}.")
    return lines


# The tuning stage (bench/report/tuning.py; conf/experiment/compare_<family>_small_tune.yaml and _final.yaml).
TUNING = Tuning(
    stage="reduced",
    seeds={"full": (1001, 1002), "reduced": (1001,)},   # never a final seed (the grid's 1, 2, 3; SEEDS= is checked)
    searched={"loraplus": ("method.lr_ratio", (2.0, 4.0))},
    extend_edges=True,
    grid_text="the learning rate one step below, at and one step above the family's own rate on the 1-3-10 "
              "half-decade ladder (1e-3, 3e-3, 1e-2 where the family trains at 3e-3; 3e-3, 1e-2, 3e-2 for "
              "memorisation's 1e-2: about ×⅓ and ×3), and for LoRA+ its ratio λ too, over MoRA §5.2.2's {2, 4}. Why "
              "this grid: the papers tune per method (MoRA App. A Table 5 two rates per method and rank, COLA five "
              "rates spanning 20×, MoRA's LoRA+ λ over {2, 4}), the CPU stand-ins have no published optimum to "
              "search near, and the families' rates were set by looking at LoRA (memorisation's by LoRA's seed-1 "
              "accuracy, conf/experiment/compare_uuid_small.yaml); the smallest symmetric grid that can move any arm "
              "half a decade either way is these three points. Where the choice sits at the grid's lowest or highest "
              "rate, the best may lie beyond it, so that cell runs one more point a ladder step beyond that edge (at "
              "a searched arm's chosen ratio) on the same tuning seeds and chooses again over the four; one round "
              "only, so the stage's cost stays bounded, and a choice still at an edge is marked (edge). This rule "
              "was added after the three-point stage's records were read (how many of its choices sat at an edge: "
              "below), and before any point beyond was run.",
    criterion_text="The validation split (bench/tasks validation_split; never a test example): for pretraining and "
                   "adaptation 200 documents held out of the corpus's training side by text, for classification 400 "
                   "sentences held out of the GLUE train files' side (one fixed split for every tuning seed, the test "
                   "split withheld); memorisation scores the pairs a run trains on, so its validation split is another "
                   "draw of the task: the tuning seed's own 64 pairs. The criterion: the family's own metric on that "
                   "split, averaged over the tuning seeds, best in the family's direction; a grid point with a failed "
                   "tuning run is never chosen, and an exact tie goes to the family's own setting, then to the lower "
                   "rate.",
    stage_text={"full": "two tuning seeds per grid point",
                "reduced": "one tuning seed per grid point, the full stage's first (the full stage runs two; what "
                           "each costs: [Scale and compute](#scale-and-compute))"},
)

SPEC = ComparisonSpec(
    name="compare",
    title="The comparison: every method on every paper's task family, at equal budgets",
    order=50,   # after every paper
    families=FAMILIES,
    arms=ARMS,
    reference=REFERENCE,
    reference_run=(f"arm={REFERENCE}", "compare.budget=8"),   # run once per seed; its budget is a placeholder
    not_run=NOT_RUN,
    perf_rows=PERF_ROWS,
    headline="Average rank over the four families",
    budget_text="Budgets are LoRA-rank equivalents of the 64-wide stand-ins; every arm trains about LoRA's count at "
                "that rank (conf/arm).",
    protocol_text="Every arm of a family trains on the same data for the same steps. On the one-rate board every "
                  "arm runs at the family's own learning rate (untuned per method: methods that want another rate, "
                  "e.g. prefix tuning, are at a disadvantage that board does not correct); on the tuned board each "
                  "arm runs at the setting its own validation split chose ([How each arm was tuned]"
                  "(#how-each-arm-was-tuned)).",
    budget_notes=BUDGET_NOTES,
    notes=(density_notes,),
    paper_scale_text="`make compare SCALE=paper LAUNCHER=slurm` (conf/experiment/compare_<family>.yaml: the models "
                     "above, budgets r 8 and 64, 3 seeds, through Hydra's submitit launcher); `make smoke "
                     "PAPERS=compare` runs every job of that grid once on a miniature of its model here. That "
                     "grid is the one-rate grid: the tuning stage runs at the small tier only (at paper scale it "
                     "would run every GPU job of the grid three times per tuning seed, and C4, read as a stream, has "
                     "no validation split to hold out here).",
    tuning=TUNING,
    index_line="Every method on every paper's task family at equal budgets: [compare/README.md](compare/README.md) "
               "(`make compare`).",
)
