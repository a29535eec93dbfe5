"""The main job (`make run`) end to end on the real SmolLM2, tiny; and its hotpotqa config on the shared data."""

import json

import pytest

from memento.evals.main_job import main, suite_config
from memento.evals.records import EpisodeLog
from memento.evals.runner import plan_passes, prepare_corpus
from memento import CaseBank


@pytest.mark.slow
def test_tiny_main_job_trains_then_tests_held_out_tasks_and_reports_intervals(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["--train-tasks", "4", "--test-tasks", "3", "--out", str(run_dir), "--no-progress"])

    assert code == 0
    printed = capsys.readouterr().out
    assert "| arm | n | EM [95% CI] | F1 [95% CI] | ΔEM vs none [95% CI] | ΔF1 vs none [95% CI] |" in printed
    assert "elapsed:" in printed
    for name in ("report.md", "summary.json", "manifest.json", "learning_curve.png", "corpus.jsonl"):
        assert (run_dir / name).is_file(), name
    records = EpisodeLog(run_dir / "episodes.jsonl").records
    assert len(records) == 14 and not any(r.error for r in records)
    assert {(r.arm, r.phase) for r in records} == {(a, p) for a in ("none", "neural") for p in ("train", "test")}
    train_ids = {r.task_id for r in records if r.phase == "train"}
    assert not train_ids & {r.task_id for r in records if r.phase == "test"}, "the test tasks are held out"
    assert all(r.llm_calls is not None for r in records)
    neural = [r for r in records if r.arm == "neural"]
    assert all(r.learned for r in neural if r.phase == "train") and not any(r.learned for r in neural if r.phase == "test")
    assert all(not r.shown and not r.learned for r in records if r.arm == "none")
    with CaseBank(run_dir / "arms" / "neural" / "bank.db") as bank:
        assert bank.count() == 4, "test episodes write no case"
    summary = json.loads((run_dir / "summary.json").read_text())
    test_rows = [row for row in summary["intervals"] if row["phase"] == "test"]
    assert {row["arm"] for row in test_rows} == {"none", "neural"}
    assert all(row["em"]["low"] <= row["em"]["mean"] <= row["em"]["high"] for row in test_rows)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "llamacpp" and len(manifest["model"]["model_sha256"]) == 64

    assert main(["--resume", str(run_dir), "--no-progress"]) == 0, "a finished run resumes to the same table"
    assert len(EpisodeLog(run_dir / "episodes.jsonl").records) == 14


def test_the_seed_changes_the_world_and_the_draw_together(tmp_path):
    one, other = (suite_config("fictional", train_tasks=20, test_tasks=10, iterations=1, arms=["none", "neural"],
                               out_dir=tmp_path / f"run{seed}", seed=seed) for seed in (0, 1))
    first, second = plan_passes(one), plan_passes(other)
    assert one.tasks.options["world_seed"] == 0 and other.tasks.options["world_seed"] == 1
    assert {t.id for t in first[0].tasks}.isdisjoint({t.id for t in second[0].tasks})
    assert [p.phase for p in first] == ["train", "test"] and [len(p.tasks) for p in first] == [20, 10]


@pytest.mark.shared_data
def test_hotpotqa_suite_reads_the_shared_questions_and_corpus(shared_data, tmp_path):
    config = suite_config("hotpotqa", train_tasks=40, test_tasks=20, iterations=1, arms=["none", "neural"],
                          out_dir=tmp_path / "run", data_dir=shared_data)

    passes = plan_passes(config)

    assert [len(p.tasks) for p in passes] == [40, 20]
    assert {t.source for t in passes[0].tasks} == {"hotpotqa"}
    assert not {t.id for t in passes[0].tasks} & {t.id for t in passes[1].tasks}
    assert prepare_corpus(config, tmp_path) == shared_data / "corpus" / "wiki_passages.jsonl.gz"
