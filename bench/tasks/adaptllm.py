"""MoRA's continual pretraining (Table 1's BioMed. and Finance columns, App. C's Tables 6-7): the two domain corpora
and the nine evaluation sets, in the protocol of AdaptLLM (Cheng et al., ICLR 2024, arXiv 2309.09530), which MoRA
follows ("complemented by data preprocessing methods from AdaptLLM", §5.2.1; its evaluation sets are AdaptLLM's).

Corpora (trained on as raw text, packed into ``task.max_length`` blocks):
  pubmed_abstracts  the Pile's "PubMed Abstracts" component (15.5M abstracts, AdaptLLM Table 7), streamed from the hub
                    mirror ArmelR/the-pile-splitted (config "PubMed Abstracts"; the Pile itself is off the hub). No
                    commit of its main branch was found offline: hub_pins.UNPINNED says so.
  fin_news          AdaptLLM's "Stock News" (May 2022 - May 2023, >7,000 stocks, crawled with FinGPT's code): never
                    released, so no public data. Reading it is one UserError saying so (TaskSpec.unavailable); a local
                    copy can be named with task.data_files.
AdaptLLM's reading-comprehension conversion and its general-instruction mix are not applied
(bench/published/setup_checks.csv, an open row).

Evaluation sets. AdaptLLM's own on the hub (AdaptLLM/medicine-tasks, AdaptLLM/finance-tasks, test split only): each
record's ``input`` is the finished prompt, AdaptLLM's demonstrations already inside it, so the shot counts below are
the hub files' (AdaptLLM Table 10), not chosen here. Scored as AdaptLLM's code scores them (github.com/microsoft/LMOps
adaptllm/: inference.py, src/dataset_readers/task.py and inference_dsr.py, src/utils/metric.py and qa_utils.py):

  task       hub config          kind        shots  metric (AdaptLLM's name)
  pubmedqa   medicine/PubMedQA   choice (3)    0    accuracy (acc)
  usmle      medicine/USMLE      choice (4)    0    accuracy (acc)
  rct        medicine/RCT        choice (5)   10    micro-F1 (micro_F1; = accuracy for one label per example)
  biommlu    cais/mmlu, 6 subj.  choice (4)    5    accuracy   (not an AdaptLLM set; see below)
  convfinqa  finance/ConvFinQA   generation    0    exact match of the first number, |Δ| <= 0.01 (ConvFinQA_em)
  fiqa_sa    finance/FiQA_SA     choice (3)    5    weighted F1 (weighted_F1)
  fpb        finance/FPB         choice (3)    5    weighted F1 (weighted_F1)
  headline   finance/Headline    choice (2)    5    weighted F1 per sub-question (class_id), averaged (Headline)
  ner        finance/NER         generation   20    entity-level F1 per example, averaged (nereval; NER)

  choice      every option is scored as " " + option text appended to the prompt; its tokens are those of
              tokenize(prompt + option) past tokenize(prompt); the prediction is the option with the highest mean
              log-likelihood per token (AdaptLLM: argmin of the summed NLL / the option's token count).
  generation  greedy decoding of at most 100 new tokens from the prompt cut to its last 2,048 - 100 tokens
              (AdaptLLM: n_tokens 2048, generate_max_len 100, truncation from the left), stopped at the first
              newline; the prediction is the text before it.
  Prompts are tokenized without a BOS token (AdaptLLM's add_bos_token=False for its LLaMA models,
  adaptllm/scripts/README.md).

BioMMLU: "selecting biomedicine subjects from MMLU" (MoRA App. C); neither MoRA nor its companion paper (arXiv
2401.07284) names the subjects or the shots. Here: MultiMedQA's six MMLU subjects (Singhal et al., Nature 2023,
arXiv 2212.13138; lm-evaluation-harness tasks/multimedqa/README.md): anatomy, clinical_knowledge, college_biology,
college_medicine, medical_genetics, professional_medicine; in MMLU's own 5-shot protocol (Hendrycks et al. 2021:
the subject's dev split as demonstrations, "The following are multiple choice questions (with answers) about
<subject>."), options " A" ... " D" scored as the choice tasks above.

A domain's number in Table 1 is the unweighted mean of its tasks' metrics (App. C: Table 6's Avg. = the mean of its
four columns, Table 7's of its five), ``DOMAINS`` below.

Local sample files (tests/fixtures/adaptllm/, hand-written in the hub schemas, marked ``"fixture"``) stand in for
the hub at the CPU tiers and in ``make smoke``.
"""

from __future__ import annotations

from .mmlu import mmlu
from .registry import TaskSpec, register

MEDICINE, FINANCE, MMLU = "AdaptLLM/medicine-tasks", "AdaptLLM/finance-tasks", "cais/mmlu"
BIOMMLU_SUBJECTS = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                    "professional_medicine")
MMLU_SHOTS = 5
FIN_NEWS_UNAVAILABLE = ("AdaptLLM's financial news corpus, May 2022 - May 2023, crawled with FinGPT's code, was never "
                        "released and has no hub copy")


# ----------------------------------------------------------------------------------------------- converters
def text(record: dict) -> dict:
    return {"text": record["text"]}


def adaptllm_choice(record: dict) -> dict:
    """An AdaptLLM multiple-choice record ({input, options, gold_index}[, class_id]): AdaptLLM's Base_Task answers are
    ' ' + option."""
    example = {"prompt": record["input"], "candidates": [" " + str(o) for o in record["options"]],
               "label": int(record["gold_index"])}
    if "class_id" in record:   # Headline: which of its nine yes/no sub-questions
        example["class_id"] = int(record["class_id"])
    return example


def first_label(label) -> str:
    """AdaptLLM's completion gold: ``label`` as a string, or the first of a list (task.py get_answer)."""
    return str(label if isinstance(label, str) else label[0])


def adaptllm_completion(record: dict) -> dict:
    """An AdaptLLM text-completion record ({input, label}): the gold answer is ' ' + label."""
    return {"prompt": record["input"], "answer": " " + first_label(record["label"])}


def biommlu(record: dict) -> dict:
    """An MMLU question in Hendrycks et al.'s form (bench/tasks/mmlu.py), with its subject for the header and the
    demonstrations (``mmlu_shots``)."""
    return {**mmlu(record), "subject": str(record["subject"])}


def mmlu_shots(examples: list[dict], pool: list[dict]) -> list[dict]:
    """MMLU's k-shot prompt: the subject's header, then up to ``MMLU_SHOTS`` demonstrations of the same subject
    (question, options, " Answer: <letter>"), in the pool's order and never the question itself, then the question."""
    out = []
    for ex in examples:
        demos = [d for d in pool if d["subject"] == ex["subject"] and d["prompt"] != ex["prompt"]][:MMLU_SHOTS]
        subject = ex["subject"].replace("_", " ")
        header = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        shown = "".join(f"{d['prompt']}{d['candidates'][d['label']]}\n\n" for d in demos)
        out.append({**ex, "prompt": header + shown + ex["prompt"], "shots": len(demos)})
    return out


# ----------------------------------------------------------------------------------------------- registry
CHOICE_FIELDS = ("input", "options", "gold_index")
COMPLETION_FIELDS = ("input", "label")
CORPUS = dict(family="cpt", kind="lm", paper="mora", metric="perplexity", scorer="suite:perplexity",
              local_fields=("text",), hub_fields=("text",), convert_local=text, convert_hub=text)
register(TaskSpec(name="pubmed_abstracts", hub_dataset="ArmelR/the-pile-splitted", hub_config="PubMed Abstracts",
                  hub_splits={"train": "train", "eval": "test"}, stream=True, **CORPUS))
register(TaskSpec(name="fin_news", hub_splits={"train": "train", "eval": "test"}, unavailable=FIN_NEWS_UNAVAILABLE,
                  **CORPUS))

# (task, family, hub dataset, hub config, kind, headline metric)
EVAL_SETS = (
    ("pubmedqa", "biomed", MEDICINE, "PubMedQA", "choice", "acc"),
    ("usmle", "biomed", MEDICINE, "USMLE", "choice", "acc"),
    ("rct", "biomed", MEDICINE, "RCT", "choice", "micro_f1"),
    ("convfinqa", "finance", FINANCE, "ConvFinQA", "sft", "exact_match"),
    ("fiqa_sa", "finance", FINANCE, "FiQA_SA", "choice", "weighted_f1"),
    ("fpb", "finance", FINANCE, "FPB", "choice", "weighted_f1"),
    ("headline", "finance", FINANCE, "Headline", "choice", "weighted_f1"),
    ("ner", "finance", FINANCE, "NER", "sft", "entity_f1"),
)
for name, family, dataset, config, kind, metric in EVAL_SETS:
    choice = kind == "choice"
    fields = CHOICE_FIELDS if choice else COMPLETION_FIELDS
    convert = adaptllm_choice if choice else adaptllm_completion
    register(TaskSpec(name=name, family=family, kind=kind, paper="mora", metric=metric,
                      scorer="adaptllm:choice" if choice else "adaptllm:completion", hub_dataset=dataset,
                      hub_config=config, hub_splits={"eval": "test"}, local_fields=fields, hub_fields=fields,
                      convert_local=convert, convert_hub=convert))
register(TaskSpec(name="biommlu", family="biomed", kind="choice", paper="mora", metric="acc", scorer="adaptllm:choice",
                  hub_dataset=MMLU, hub_config=BIOMMLU_SUBJECTS, hub_splits={"eval": "test", "shots": "dev"},
                  num_fewshot=MMLU_SHOTS, local_fields=("question", "subject", "choices", "answer"),
                  hub_fields=("question", "subject", "choices", "answer"), convert_local=biommlu, convert_hub=biommlu,
                  shots=mmlu_shots))

# Table 1's continual-pretraining columns: each the unweighted mean of its tasks' headline metrics (App. C).
DOMAINS: dict[str, tuple[str, ...]] = {
    "BioMed": ("pubmedqa", "usmle", "biommlu", "rct"),
    "Finance": ("convfinqa", "fiqa_sa", "headline", "ner", "fpb"),
}
