"""An eval whose episodes errored says so (summary, report, exit code) and retries them on resume.

The endpoint that is down is real: an OpenAI-compatible backend pointed at a closed port on
127.0.0.1 (loopback only), so the error is the one a user sees when their server is not up.
"""

import json
import socket

import pytest

from memento.evals.records import EpisodeLog, EvalSummary
from memento.evals.runner import run_eval
from memento.llm.openai_backend import OpenAILLM
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder

EXPECTED = 4 * 1 * 2  # tasks x passes x arms of the runs below


@pytest.fixture
def dead_endpoint() -> str:
    """The base URL of an OpenAI-compatible endpoint that is down: a port on 127.0.0.1 nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def dead_llm(base_url: str) -> OpenAILLM:
    return OpenAILLM(base_url=base_url, model="down", max_retries=0, connect_timeout_s=2.0)


def run_against(config, llm):
    return run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=FakeAgentEpisodes(llm))


def log_lines(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


def test_an_eval_against_a_dead_endpoint_is_incomplete_and_counts_its_errors(fictional_config, dead_endpoint):
    config = fictional_config(iterations=1)

    summary = run_against(config, dead_llm(dead_endpoint))

    assert summary.episodes == summary.expected_episodes == EXPECTED
    assert summary.errored_episodes == EXPECTED
    assert not summary.complete, "an eval whose episodes errored is not complete"
    assert "LLMConnectionError" in summary.first_error and dead_endpoint in summary.first_error
    saved = json.loads((config.out_dir / "summary.json").read_text())
    assert saved["complete"] is False and saved["errored_episodes"] == EXPECTED
    report = (config.out_dir / "report.md").read_text()
    assert f"{EXPECTED} errored" in report and "LLMConnectionError" in report


def test_a_resumed_run_retries_the_errored_episodes_and_appends_their_new_records(fictional_config, dead_endpoint):
    config = fictional_config(iterations=1)
    run_against(config, dead_llm(dead_endpoint))

    retried = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler))
    summary = run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=retried)

    assert retried.calls == EXPECTED, "every errored episode runs again"
    lines = log_lines(config.out_dir)
    assert len(lines) == 2 * EXPECTED, "the log is append-only: the errored records stay, the retries follow"
    assert all(line["error"] for line in lines[:EXPECTED]) and not any(line["error"] for line in lines[EXPECTED:])
    records = EpisodeLog(config.out_dir / "episodes.jsonl").records
    assert len(records) == len({r.key for r in records}) == EXPECTED and not any(r.error for r in records)
    assert summary.complete and summary.errored_episodes == 0 and summary.first_error is None
    assert all(row.errors == 0 for row in summary.by_iteration), "the summary reads the latest record of each key"
    manifest = json.loads((config.out_dir / "manifest.json").read_text())
    assert [i["episodes_already_done"] for i in manifest["invocations"]] == [0, 0]

    again = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler))
    run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=again)
    assert again.calls == 0 and len(log_lines(config.out_dir)) == 2 * EXPECTED, "a finished episode never reruns"


def test_an_episode_that_errors_again_on_resume_stays_errored(fictional_config, dead_endpoint):
    config = fictional_config(iterations=1)
    run_against(config, dead_llm(dead_endpoint))

    summary = run_against(config, dead_llm(dead_endpoint))

    assert len(log_lines(config.out_dir)) == 2 * EXPECTED
    assert summary.episodes == EXPECTED and summary.errored_episodes == EXPECTED and not summary.complete


def test_a_summary_written_before_errors_were_counted_still_reads(fictional_config):
    config = fictional_config(iterations=1)
    summary = run_against(config, SlowScriptedLLM(gold_echo_handler))
    old = summary.model_dump(mode="json", exclude={"errored_episodes", "first_error", "complete"})

    assert EvalSummary.model_validate(old).complete
