"""The summary's intervals, paired differences to no memory and costs, and the report's CI tables.

Built from hand-written episode records, so every number has a known value; the run-folder test at
the end goes through the real runner with the fake agent of tests/evals/fake_episodes.py.
"""

import json

import numpy as np
import pytest

from memento.evals.config import EvalConfig, TaskSpec
from memento.evals.records import EpisodeLog, EpisodeRecord, EvalSummary, summarize
from memento.evals.report import format_tables, write_report
from memento.evals.runner import run_eval
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.evals.test_clean_split import GOLD
from tests.fakes import FakeHashEmbedder

HEADLINE = "| arm | n | EM [95% CI] | F1 [95% CI] | ΔEM vs none [95% CI] | ΔF1 vs none [95% CI] |"
TEST_TASKS = 30
TRAIN_TASKS = 10


def episode(arm, phase, iteration, task, em, *, attempt=0, seconds=1.0, llm_calls=None, prompt_tokens=100):
    return EpisodeRecord(arm=arm, phase=phase, iteration=iteration, attempt=attempt, task_id=task,
                         question=f"question {task}", source="fictional", benchmark="fictional", gold=["gold"],
                         scores={"em": em, "f1": 0.5 + em / 2}, seconds=seconds, llm_calls=llm_calls,
                         prompt_tokens=prompt_tokens)


def split_run():
    """Two training passes, then 30 test tasks; neural gets 12 more test tasks right than none."""
    baseline = (np.random.default_rng(7).random(TEST_TASKS) < 0.2).astype(float)
    gained = [i for i in range(TEST_TASKS) if baseline[i] == 0.0][:12]
    records = []
    for iteration in (1, 2):
        for i in range(TRAIN_TASKS):
            records.append(episode("none", "train", iteration, f"train-{i}", 0.0, seconds=4.0, llm_calls=10))
            learned = float(iteration == 2 or i >= TRAIN_TASKS // 2)
            records.append(episode("neural", "train", iteration, f"train-{i}", learned, seconds=2.0, llm_calls=4))
    for i in range(TEST_TASKS):
        records.append(episode("none", "test", 1, f"test-{i}", float(baseline[i]), seconds=4.0, llm_calls=10))
        records.append(episode("neural", "test", 1, f"test-{i}", 1.0 if i in gained else float(baseline[i]),
                               seconds=2.0 if i % 2 else 3.0, llm_calls=4, prompt_tokens=50))
    summary = summarize(records, run_dir="run", protocol="split", arms=["none", "neural"], iterations=2,
                        attempts=1, expected_episodes=len(records))
    return summary, baseline


def test_each_arm_and_pass_has_em_and_f1_with_intervals():
    summary, baseline = split_run()

    test = summary.interval("neural", "test", "1")
    assert test.n == TEST_TASKS and test.em.n == TEST_TASKS
    assert test.em.mean == pytest.approx((baseline.sum() + 12) / TEST_TASKS)
    assert test.em.low < test.em.mean < test.em.high
    assert test.f1.mean == pytest.approx(0.5 + test.em.mean / 2)
    assert summary.interval("none", "test", "1").em.mean == pytest.approx(baseline.mean())
    assert [(r.arm, r.phase, r.group) for r in summary.intervals] == [
        ("none", "train", "1"), ("none", "train", "2"), ("none", "test", "1"),
        ("neural", "train", "1"), ("neural", "train", "2"), ("neural", "test", "1")]


def test_the_paired_difference_to_none_is_recovered_on_test_and_per_training_pass():
    summary, _ = split_run()

    test = summary.difference("neural", "test", "1")
    assert test.baseline == "none" and test.pairs == TEST_TASKS
    assert test.em.mean == pytest.approx(12 / TEST_TASKS) and test.em.excludes_zero and test.em.low > 0
    assert test.f1.mean == pytest.approx(6 / TEST_TASKS)
    assert summary.difference("neural", "train", "1").em.mean == pytest.approx(0.5)
    assert summary.difference("neural", "train", "2").em.mean == 1.0
    assert summary.difference("none", "test", "1") is None, "the baseline is not compared with itself"


def test_costs_and_the_training_curve_are_in_the_summary():
    summary, _ = split_run()

    costs = {(c.arm, c.phase): c for c in summary.costs}
    assert list(costs) == [("none", "train"), ("none", "test"), ("neural", "train"), ("neural", "test")]
    neural = costs["neural", "test"]
    assert neural.episodes == TEST_TASKS and neural.llm_calls == 4.0 and neural.prompt_tokens == 50.0
    assert neural.seconds == pytest.approx(2.5) and neural.seconds_median == 2.5
    curve = next(c for c in summary.training_curves if c.arm == "neural")
    assert curve.iteration == [1] * TRAIN_TASKS + [2] * TRAIN_TASKS
    assert curve.em == [0.0] * 5 + [1.0] * 15


def test_summary_json_carries_the_intervals():
    summary, _ = split_run()

    data = json.loads(summary.model_dump_json())
    difference = next(d for d in data["versus_baseline"] if d["phase"] == "test")
    assert set(difference["em"]) == {"mean", "low", "high", "n", "level", "excludes_zero"}
    assert difference["em"]["excludes_zero"] is True
    assert EvalSummary.model_validate_json(summary.model_dump_json()) == summary


def test_tables_show_the_ci_columns_the_differences_and_the_costs(tmp_path):
    summary, _ = split_run()

    printed = format_tables(summary)
    assert HEADLINE in printed
    neural_row = next(line for line in printed.splitlines() if line.startswith("| neural | 30 |"))
    assert "| +0.400 [" in neural_row and "] * |" in neural_row
    assert next(line for line in printed.splitlines() if line.startswith("| none | 30 |")).endswith("| - | - |")
    assert "| neural | train 1 | 10 | +0.500 [" in printed, "the per-pass differences"
    assert "| LLM calls/ep |" in printed and "| neural | test | 30 | 2.5 | 2.5 | 4.0 | 50 |" in printed
    assert "| pass | none: EM / F1 | neural: EM / F1 |" in printed, "the old table is still there"

    report = write_report(summary, tmp_path / "report.md").read_text()
    assert "## Held-out test pass: EM and F1 with 95% confidence intervals" in report
    assert HEADLINE in report and "## Against `none`, pass by pass" in report
    assert "## What an episode costs" in report and "## Exact match by pass" in report


def test_without_a_none_arm_the_table_has_no_difference_columns():
    records = [episode("similarity", "test", 1, f"t{i}", float(i % 2)) for i in range(6)]
    summary = summarize(records, run_dir="run", protocol="split", arms=["similarity"], iterations=1, attempts=1,
                        expected_episodes=6)

    assert summary.versus_baseline == []
    assert "| arm | n | EM [95% CI] | F1 [95% CI] |\n" in format_tables(summary)
    assert "Δ" not in format_tables(summary).split("\n\n")[0]


def test_an_old_log_without_the_new_fields_still_summarises(tmp_path):
    old = [episode("none", "train", 1, "a", 1.0), episode("neural", "train", 1, "a", 1.0)]
    lines = []
    for number, record in enumerate(old):
        line = record.model_dump(mode="json", exclude={"llm_calls"})
        line["trace"] = {"llm_calls": [{"node": "plan"}] * 3} if number else None
        lines.append(json.dumps(line))
    (tmp_path / "episodes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    records = EpisodeLog(tmp_path / "episodes.jsonl").records
    summary = summarize(records, run_dir=str(tmp_path), protocol="iterated", arms=["none", "neural"], iterations=1,
                        attempts=1, expected_episodes=2)

    assert all(r.llm_calls is None for r in records)
    costs = {c.arm: c for c in summary.costs}
    assert costs["none"].llm_calls is None, "no count and no trace: unknown, not zero"
    assert costs["neural"].llm_calls == 3.0, "an old record's trace still gives its count"
    assert summary.difference("neural", "train", "1").em.mean == 0.0
    assert "| none | train | 1 | 1.0 | 1.0 | - |" in format_tables(summary)


def test_an_old_summary_json_without_the_new_fields_still_reports(tmp_path):
    summary, _ = split_run()
    old = summary.model_dump(mode="json", exclude={"intervals", "versus_baseline", "costs", "training_curves"})

    loaded = EvalSummary.model_validate(old)

    assert loaded.intervals == [] and HEADLINE not in format_tables(loaded)
    assert "## Exact match by pass" in write_report(loaded, tmp_path / "report.md").read_text()


def test_a_split_run_folder_has_the_ci_table_and_a_learning_curve(tmp_path, split_files):
    train, test = split_files
    config = EvalConfig(out_dir=tmp_path / "run", protocol="split", tasks=TaskSpec(source="qa", path=str(train)),
                        test_tasks=TaskSpec(source="deepresearcher", path=str(test)), arms=["none", "similarity"],
                        iterations=2, k=2, concurrency=1)
    run_eval(config, progress=False, embedder=FakeHashEmbedder(),
             episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler), answer_key=GOLD))

    saved = EvalSummary.model_validate_json((tmp_path / "run" / "summary.json").read_text())
    assert saved.difference("similarity", "test", "1").pairs == 3
    assert [(c.arm, c.iteration) for c in saved.training_curves] == [("none", [1, 1, 1, 2, 2, 2]),
                                                                      ("similarity", [1, 1, 1, 2, 2, 2])]
    report = (tmp_path / "run" / "report.md").read_text()
    assert HEADLINE in report and "![learning_curve](learning_curve.png)" in report
    assert (tmp_path / "run" / "learning_curve.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_report_shows_each_distillation_base_to_adapter(tmp_path):
    summary, _ = split_run()
    runs = {"neural": [
        {"run": 1, "successes": 20, "status": "done", "version": "v0001", "promoted": True, "gate_passed": True,
         "failed": [], "before": {"heldout_logprob": {"mean": -5.85}, "general_ppl": {"mean": 20.1}},
         "after": {"heldout_logprob": {"mean": -3.08}, "general_ppl": {"mean": 20.4}}},
        {"run": 2, "successes": 40, "status": "done", "version": "v0002", "promoted": False, "gate_passed": False,
         "failed": ["general_ppl"], "before": {"heldout_logprob": {"mean": -3.1}}, "after": {"heldout_logprob": {"mean": -2.9}}},
        {"run": 3, "successes": 60, "status": "failed", "error": "need 100 examples"}]}
    (tmp_path / "distillations.json").write_text(json.dumps(runs))
    report = write_report(summary, tmp_path / "report.md").read_text()
    section = report.split("## Distillations", 1)[1]
    assert "| neural | 1 | 20 | done | v0001 | yes | -5.850 → -3.080 | 20.100 → 20.400 |" in section
    assert "| neural | 2 | 40 | rejected (general_ppl) | v0002 | no | -3.100 → -2.900 | - → - |" in section
    assert "failed: need 100 examples" in section
    without = tmp_path / "without"
    without.mkdir()
    assert "## Distillations" not in write_report(summary, without / "report.md").read_text()
