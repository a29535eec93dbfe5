"""`memento eval run` and `python -m memento.evals.main_job` exit with 1 when episodes errored: the real agent
against an OpenAI-compatible endpoint that is down (a closed port on 127.0.0.1, loopback only)."""

import json
import socket

import pytest
from typer.testing import CliRunner

from memento.evals.config import EvalConfig, LLMSpec, TaskSpec
from memento.evals.main_job import main
from memento.evals.records import EpisodeLog
from memento.cli import app
from memento.cli.banks import EMBEDDERS
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.slow  # the agent's first episode imports langgraph and torch: seconds


@pytest.fixture
def dead_llm() -> LLMSpec:
    """The openai backend pointed at a port on 127.0.0.1 that nothing listens on, with no retries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return LLMSpec(backend="openai", options={"base_url": f"http://127.0.0.1:{port}/v1", "model": "down",
                                              "max_retries": 0})


def small_config(out_dir, llm: LLMSpec) -> EvalConfig:
    return EvalConfig(out_dir=out_dir, tasks=TaskSpec(source="fictional", limit=2, options={"n_entities": 40}),
                      arms=["none", "similarity"], iterations=1, concurrency=1, llm=llm)


def test_eval_run_exits_1_with_one_line_naming_the_errors(tmp_path, monkeypatch, dead_llm):
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    config = tmp_path / "config.json"
    config.write_text(small_config(tmp_path / "run", dead_llm).model_dump_json())

    result = CliRunner().invoke(app, ["eval", "run", str(config), "--embedder", "fake-hash"], prog_name="memento")

    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: 4 of 4 episodes errored"), result.stderr
    assert "LLMConnectionError" in lines[0] and dead_llm.options["base_url"] in lines[0]
    assert "Traceback" not in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is False and summary["errored_episodes"] == 4


def test_main_job_exits_1_when_its_episodes_errored(tmp_path, capsys, dead_llm):
    run_dir = tmp_path / "run"
    config = small_config(run_dir, dead_llm)
    run_dir.mkdir()
    # A run folder as `--resume` finds it: the main job's own config, here aimed at the dead endpoint.
    (run_dir / "manifest.json").write_text(json.dumps({"fingerprint": config.fingerprint(),
                                                       "config": config.model_dump(mode="json")}))

    assert main(["--resume", str(run_dir), "--no-progress"]) == 1

    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-1].startswith("error: 4 of 4 episodes errored") and "LLMConnectionError" in errors[-1]
    assert f"--resume {run_dir}" in errors[-1]
    assert all(r.error for r in EpisodeLog(run_dir / "episodes.jsonl").records)
