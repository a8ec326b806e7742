"""`python -m bench.tasks`: every task with family, paper, hub dataset, lm-eval task, metric and scorer."""

from __future__ import annotations

from . import TASKS


def config_label(config: str | tuple[str, ...]) -> str:
    return config if isinstance(config, str) else f"{{{','.join(config)}}}"


def main() -> None:
    header = ("task", "family", "kind", "paper", "hub dataset", "lm-eval task", "metric", "scorer")
    rows = [(s.name, s.family, s.kind, s.paper, f"{s.hub_dataset or '-'}{'/' + config_label(s.hub_config) if s.hub_config else ''}",
             s.lm_eval_task or "-", s.metric, s.scorer) for s in sorted(TASKS.values(), key=lambda s: (s.family, s.name))]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
