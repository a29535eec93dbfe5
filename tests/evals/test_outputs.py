"""The run folder: episodes.jsonl, summary.json, report.md, valid PNG plots and a reproducible manifest."""

import hashlib
import json

import matplotlib.image

from memento.evals.records import EpisodeLog, EvalSummary
from memento.evals.runner import run_eval
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_run_folder_holds_records_summary_report_plots_and_manifest(fictional_config):
    config = fictional_config(attempts=2)
    summary = run_eval(config, progress=False, embedder=FakeHashEmbedder(),
                       episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler)))
    run_dir = config.out_dir

    records = EpisodeLog(run_dir / "episodes.jsonl").records
    assert len(records) == 4 * 2 * 2 * 2 == summary.episodes == summary.expected_episodes
    first = records[0]
    assert first.question and first.gold and set(first.scores) == {"em", "f1"} and first.finished_at

    saved = EvalSummary.model_validate_json((run_dir / "summary.json").read_text())
    assert saved == summary
    assert [(r.arm, r.group) for r in saved.by_iteration] == [("none", "1"), ("none", "2"),
                                                               ("similarity", "1"), ("similarity", "2")]
    assert all(set(r.pass_at_k) == {"1", "2"} for r in saved.by_iteration)
    assert all(r.pass_at_k["1"] <= r.pass_at_k["2"] for r in saved.by_iteration)

    report = (run_dir / "report.md").read_text()
    assert "## Exact match by pass" in report and "Pass@2" in report and "![accuracy_by_iteration]" in report
    for arm in config.arms:
        assert f"{arm}: EM / F1" in report

    data = (run_dir / "accuracy_by_iteration.png").read_bytes()
    assert data.startswith(PNG_MAGIC)
    height, width, _ = matplotlib.image.imread(run_dir / "accuracy_by_iteration.png").shape
    assert height > 100 and width > 100
    for name in ("accuracy_by_source.png", "accuracy_by_domain.png"):
        assert not (run_dir / name).exists(), "one source and no in/out domain: nothing to compare"


def test_manifest_records_what_is_needed_to_reproduce_the_run(fictional_config):
    config = fictional_config(arms=["none", "similarity", "neural"], iterations=1,
                              policy_options={"neural": {"alpha": 0.7}})
    run_eval(config, progress=False, embedder=FakeHashEmbedder(),
             episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler)))

    manifest = json.loads((config.out_dir / "manifest.json").read_text())
    assert manifest["fingerprint"] == config.fingerprint()
    assert manifest["config"]["tasks"]["options"] == {"n_entities": 40}
    assert manifest["seeds"] == {"run": 0, "tasks": 0, "test_tasks": None}
    assert manifest["policies"]["none"] is None
    assert manifest["policies"]["similarity"]["config"] == {}
    neural = manifest["policies"]["neural"]
    assert neural["kind"] == "neural" and neural["config"]["alpha"] == 0.7 and neural["config"]["seed"] == 0
    assert neural["embedder"] == FakeHashEmbedder().name
    corpus = config.out_dir / "corpus.jsonl"
    assert manifest["data_files"] == {str(corpus): hashlib.sha256(corpus.read_bytes()).hexdigest()}
    assert manifest["packages"]["torch"] and manifest["packages"]["numpy"]
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["tasks"] == {"train pass 1": 4}
    assert manifest["invocations"][0]["episodes_already_done"] == 0
    assert manifest["python"] and manifest["platform"] and manifest["created_at"]
