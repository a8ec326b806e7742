"""Every hub dataset the tasks read, pinned to a commit, and the size of the train splits the planner needs.

A pin makes a paper-scale run read the same bytes next year; ``load_dataset(..., revision=<sha>)`` (readers.py).
Sources (public code and dataset pages that pin the same commits; see the docs/ notes): the lm-eval and OLMES lock
files for ai2_arc, openbookqa, hellaswag, gsm8k, hendrycks_math and mmlu; the datasets' own tree pages otherwise.
A dataset with no full commit hash found offline is listed in UNPINNED with the reason, and the test that every hub
dataset is pinned names it.
"""

from __future__ import annotations

HUB_REVISIONS: dict[str, str] = {
    "allenai/ai2_arc": "210d026faf9955653af8916fad021475a3f00453",
    "google/boolq": "35b264d03638db9f4ce671b711558bf7ff0f80d5",
    "allenai/openbookqa": "388097ea7776314e93a529163e0fea805b8a6454",
    "baber/piqa": "142f6d7367fd9877f0fb3b5734ea6a545f54cdd1",   # parquet mirror (ybisk/piqa is a loading script)
    "Rowan/hellaswag": "218ec52e09a7e7462a5400043bb9a69a41d06b76",
    "nyu-mll/glue": "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c",
    "aps/super_glue": "3de24cf8022e94f4ee4b9d55a6f539891524d646",
    "yahma/alpaca-cleaned": "12567cabf869d7c92e573c7c783905fc160e9639",
    "openai/gsm8k": "740312add88f781978c0658806c59bc2815b9866",
    "meta-math/MetaMathQA": "aa4f34d3d2d3231299b5b03d9b3e5a20da45aa18",
    "EleutherAI/hendrycks_math": "21a5633873b6a120296cce3e2df9d5550074f4a3",
    "allenai/tulu-v2-sft-mixture": "6248b175d2ccb5ec7c4aeb22e6d8ee3b21b2c752",
    "cais/mmlu": "c30699e8356da336a370243923dbaf21066bb9fe",
    "allenai/c4": "1588ec454efa1a09f29cd18ddd04fe05fc8653a2",
    # MoRA's continual-pretraining evaluation sets (AdaptLLM's): the Hub's sha of main in a dataset-card corpus and on
    # the tree page https://huggingface.co/datasets/AdaptLLM/medicine-tasks/tree/main (68afee8); for finance the newest
    # full sha seen, https://huggingface.co/datasets/AdaptLLM/finance-tasks/tree/cb7ab029f29e88fb25ffa65fd881ad14c25383fc
    # (later commits touch only the README; the data files last changed in 2221398, "debug ConvFinQA encoding").
    "AdaptLLM/medicine-tasks": "68afee8d7be55335ba0e34deacc23120233161f6",
    "AdaptLLM/finance-tasks": "cb7ab029f29e88fb25ffa65fd881ad14c25383fc",
}
UNPINNED: dict[str, str] = {
    "zwhe99/commonsense_170k": "only the short hash 0bb8db2 of main was found offline; pin the full sha with "
                               "`huggingface_hub.dataset_info('zwhe99/commonsense_170k').sha` on a machine with hub access",
    "ArmelR/the-pile-splitted": "the Pile's PubMed Abstracts (MoRA's biomedical corpus) on the hub; only parquet-converter "
                                "commits of it were found offline (e.g. 1eddb11f0bfe4eb7766eb0c89511825085e7bd25, whose "
                                "parquet holds a partial copy), no commit of main; pin it with "
                                "`huggingface_hub.dataset_info('ArmelR/the-pile-splitted').sha` on a machine with hub access",
}

# Rows of each train split (dataset, config) a paper-scale job may train on for whole epochs (the planner's tokens).
HUB_TRAIN_ROWS: dict[tuple[str, str | None], int] = {
    ("allenai/ai2_arc", "ARC-Easy"): 2251, ("allenai/ai2_arc", "ARC-Challenge"): 1119,
    ("google/boolq", None): 9427, ("allenai/openbookqa", "main"): 4957, ("baber/piqa", None): 16113,
    ("Rowan/hellaswag", None): 39905, ("zwhe99/commonsense_170k", None): 170420,
    ("nyu-mll/glue", "sst2"): 67349, ("nyu-mll/glue", "cola"): 8551, ("nyu-mll/glue", "mrpc"): 3668,
    ("nyu-mll/glue", "qnli"): 104743, ("nyu-mll/glue", "stsb"): 5749, ("nyu-mll/glue", "rte"): 2490,
    ("nyu-mll/glue", "mnli"): 392702, ("nyu-mll/glue", "qqp"): 363846,
    ("yahma/alpaca-cleaned", None): 51760, ("openai/gsm8k", "main"): 7473, ("meta-math/MetaMathQA", None): 395000,
    ("EleutherAI/hendrycks_math", None): 7500, ("allenai/tulu-v2-sft-mixture", None): 326154,
}


def revision_of(dataset: str) -> str | None:
    return HUB_REVISIONS.get(dataset)


def train_rows(dataset: str | None, config) -> int | None:
    if dataset is None:
        return None
    key = config if isinstance(config, str) or config is None else None   # several configs: the dataset's total
    return HUB_TRAIN_ROWS.get((dataset, key))
