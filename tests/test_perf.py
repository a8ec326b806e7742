"""bench.perf in its seconds-long mode: the table is complete and every ratio finite (timings never asserted)."""

from __future__ import annotations

import json
import math

from bench.perf.__main__ import main
from bench.perf.bench import SUITE_ROW, rows_for


def test_quick_perf_writes_a_complete_table_with_finite_ratios(tmp_path):
    main(["quick=true", f"out_dir={tmp_path}"])
    report = json.loads((tmp_path / "perf.json").read_text())
    markdown = (tmp_path / "perf.md").read_text()
    assert set(report["ranks"]) == {"2", "4"}
    for r, rows in report["ranks"].items():
        assert [e["row"] for e in rows] == [row.name for row in rows_for(int(r))]
        for e in rows:
            for key in ("median_step_ms", "amortised_step_ms", "tokens_per_s", "vs_lora", "vs_peft_lora", "vs_floor",
                        "arithmetic_vs_floor", "overhead_beyond_arithmetic", "peak_mem_mb"):
                if key == "peak_mem_mb" and e["row"] == SUITE_ROW:
                    assert e[key] is None  # its Trainer's step is out of reach of the saved-tensor count: "–"
                    continue
                assert math.isfinite(e[key]) and e[key] > 0 or (key == "peak_mem_mb" and e[key] >= 0), (e["row"], key, e[key])
            assert e["arithmetic_vs_floor"] >= 1.0
            assert e["row"] in markdown
        lora = next(e for e in rows if e["row"] == "lora")
        assert lora["vs_lora"] == 1.0
    header = report["header"]
    assert header["device"] == "cpu" and header["versions"]["torch"] and "interleaved" in markdown
    assert "overhead beyond arithmetic" in markdown and "Goals at r = 2: " in markdown and "unresolved" in markdown


def test_salora_table4_has_both_rows_per_model_and_batch(tmp_path):
    from bench.perf.paper_tables import main as paper_tables

    (report,) = paper_tables(["salora", "models=[tiny_roberta]", "batches=[2,3]", "seq_len=8", "reps=2", f"out={tmp_path}"])
    assert [(e["batch"], e["method"]) for e in report["entries"]] == [(2, "lora"), (2, "salora"), (3, "lora"), (3, "salora")]
    for e in report["entries"]:
        assert math.isfinite(e["time_vs_lora"]) and e["time_vs_lora"] > 0 and e["peak_mem_mb"] > 0
    assert "| tiny_roberta | 3 | salora (in window) |" in (tmp_path / "table4_perf.md").read_text()


def test_salora_table4_bad_argument_is_one_line(tmp_path, capsys):
    import pytest

    from bench.perf.paper_tables import main as paper_tables

    with pytest.raises(SystemExit) as exit_:
        paper_tables(["salora", "batches=[0]", f"out={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "batches=[0]" in err[0] and "integers >= 1" in err[0]


def test_ratios_pair_the_rows_of_one_repetition():
    """× floor is the median of each repetition's ratio, so drift between repetitions divides out: here the ratio
    of the two medians (210 / 200 = 1.05) would hide a row that is 1.10× the floor in the middle repetition."""
    from omegaconf import OmegaConf

    from bench.perf.bench import FLOOR_ROW, Row
    from bench.perf.config import DEFAULTS
    from bench.perf.summary import summarise

    floor, row = Row(FLOOR_ROW, None, samples=[0.100, 0.200, 0.400]), Row("lora", "lora", samples=[0.120, 0.210, 0.440])
    peft = Row("peft lora", "peft", samples=[0.100, 0.200, 0.400])
    entries = {e["row"]: e for e in summarise([floor, row, peft], OmegaConf.merge(DEFAULTS, {}))}
    assert math.isclose(entries["lora"]["vs_floor"], 1.10) and math.isclose(entries["lora"]["vs_peft_lora"], 1.10)
    assert math.isclose(entries["lora"]["median_step_ms"], 210.0) and entries["lora"]["vs_lora"] == 1.0
    assert math.isclose(entries["lora"]["vs_floor_iqr"], 1.20 - 1.05)  # statistics.quantiles' default (exclusive)


def test_the_median_interval_is_the_binomial_order_statistics():
    """n 40: the 14th and 27th values (P(14 <= Binom(40, 1/2) <= 26) = 0.962 >= 0.95); n 5 is too few to cover it."""
    from scipy import stats

    from bench.stats import median_interval

    values = [float(v) for v in range(40, 0, -1)]  # unsorted on purpose: 40, 39, ..., 1
    assert median_interval(values) == (14.0, 27.0)
    assert stats.binom.cdf(26, 40, 0.5) - stats.binom.cdf(13, 40, 0.5) >= 0.95
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) == (-math.inf, math.inf)


def test_a_goal_is_met_missed_or_unresolved_by_its_interval():
    """A goal's verdict reads the 95% interval of its median ratio, never the median alone: a median under the
    limit whose interval spans it is unresolved, not met."""
    from bench.perf.summary import OVERHEAD_LIMIT, goal_verdict, goals_for

    def entry(low, median, high):
        return {"row": "olora", "vs_lora": median, "vs_lora_ci": [low, high], "overhead_beyond_arithmetic": 1.0,
                "overhead_beyond_arithmetic_ci": [0.98, 1.02]}

    assert goal_verdict(entry(0.99, 1.00, 1.01), "vs_lora", 1.02) == "met"
    assert goal_verdict(entry(1.03, 1.05, 1.08), "vs_lora", 1.02) == "missed"
    assert goal_verdict(entry(0.97, 1.01, 1.06), "vs_lora", 1.02) == "unresolved"
    assert goals_for(entry(0.97, 1.01, 1.06), "8") == [("× LoRA ≤ 1.02", "unresolved"),
                                                         (f"overhead ≤ {OVERHEAD_LIMIT:.2f}", "met")]
    assert goal_verdict({"vs_lora": 1.01}, "vs_lora", 1.02) == "met"  # a record from before the intervals: its median
