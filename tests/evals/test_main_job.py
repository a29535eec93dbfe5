"""The main job (`make run`) end to end on the real SmolLM2, tiny; and its hotpotqa config on the shared data."""

import json

import pytest

from evals.main_job import main, suite_config
from evals.records import EpisodeLog
from evals.runner import plan_passes, prepare_corpus
from memento import CaseBank


@pytest.mark.slow
def test_tiny_main_job_runs_the_real_agent_and_writes_the_table_and_plot(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # One episode at a time, so the neural arm's second task sees the case its first task left.
    code = main(["--tasks", "2", "--iterations", "1", "--concurrency", "1", "--out", str(run_dir), "--no-progress"])

    assert code == 0
    printed = capsys.readouterr().out
    assert "| pass | none: EM / F1 | neural: EM / F1 |" in printed and "elapsed:" in printed
    for name in ("report.md", "summary.json", "manifest.json", "accuracy_by_iteration.png", "corpus.jsonl"):
        assert (run_dir / name).is_file(), name
    records = EpisodeLog(run_dir / "episodes.jsonl").records
    assert len(records) == 4 and not any(r.error for r in records)
    assert all(r.prompt_tokens > 0 and r.trace["llm_calls"] for r in records), "the real model answered"
    neural = [r for r in records if r.arm == "neural"]
    assert [len(r.shown) for r in neural] == [0, 1] and all(r.learned for r in neural)
    assert all(not r.shown and not r.learned for r in records if r.arm == "none")
    with CaseBank(run_dir / "arms" / "neural" / "bank.db") as bank:
        assert bank.count() == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "llamacpp" and len(manifest["model"]["model_sha256"]) == 64

    assert main(["--resume", str(run_dir), "--no-progress"]) == 0, "a finished run resumes to the same table"
    assert len(EpisodeLog(run_dir / "episodes.jsonl").records) == 4


@pytest.mark.shared_data
def test_hotpotqa_suite_reads_the_shared_questions_and_corpus(shared_data, tmp_path):
    config = suite_config("hotpotqa", tasks=40, iterations=3, arms=["none", "neural"], out_dir=tmp_path / "run",
                          data_dir=shared_data)

    passes = plan_passes(config)

    assert [len(p.tasks) for p in passes] == [40, 40, 40]
    assert {t.source for t in passes[0].tasks} == {"hotpotqa"}
    assert prepare_corpus(config, tmp_path) == shared_data / "corpus" / "wiki_passages.jsonl.gz"
