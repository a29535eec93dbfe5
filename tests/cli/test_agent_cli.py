"""`memento ask` and `memento eval run | report`, with the real agent and eval runner on a scripted LLM backend."""

import json

import pytest

pytestmark = pytest.mark.slow  # the agent's first episode imports langgraph and torch: seconds

from tests.cli.scripted_llm import ANSWER


def test_ask_answers_shows_the_cases_it_used_and_learns(cli, bank, scripted):
    result = cli.ok("ask", "Who founded Acme?", "--namespace", "acme", "-k", "2", "--gold", ANSWER,
                    "--bank", bank, env=scripted)
    assert result["answer"] == ANSWER and result["reward"] == 1.0
    assert {c["case_id"] for c in result["cases"]} == {"acme-1", "acme-2"}  # the two copies of this very task
    stored = cli.ok("cases", "show", result["case_id"], "--bank", bank)
    assert stored["task"] == "Who founded Acme?" and stored["namespace"] == ["acme"] and stored["reward"] == 1.0


def test_ask_no_learn_leaves_memory_untouched(cli, bank, scripted):
    before = cli.snapshot(bank)
    result = cli.ok("ask", "Who founded Acme?", "--no-learn", "--bank", bank, env=scripted)
    assert result["answer"] == ANSWER and result["case_id"] is None
    assert cli.snapshot(bank) == before


def test_ask_refuses_an_unknown_backend_in_one_line(cli, bank):
    assert "unknown LLM backend 'nope'" in cli.fails("ask", "Who?", "--backend", "nope", "--bank", bank)


def test_eval_run_then_report(cli, scripted):
    rows = cli.ok("eval", "run", "--source", "fictional", "--limit", "2", "--arm", "none", "--arm", "similarity",
                  "--iterations", "1", "--concurrency", "1", "--backend", "cli-scripted", "--out-dir", "run")
    assert {(r["arm"], r["n"]) for r in rows} == {("none", 2), ("similarity", 2)}
    assert (cli.folder / "run" / "report.md").exists()
    assert cli.ok("eval", "report", "run") == rows
    assert cli.ok("eval", "report", "run", "--by", "source")[0]["group"] == "fictional"


def test_eval_errors_are_one_line(cli):
    (cli.folder / "bad.yaml").write_text("arms: [none, telepathy]\n")
    assert "telepathy" in cli.fails("eval", "run", "bad.yaml")
    assert "no_such_source" in cli.fails("eval", "run", "--source", "no_such_source")
    assert "summary.json' does not exist" in cli.fails("eval", "report", "nowhere")
    (cli.folder / "config.json").write_text(json.dumps({"iterations": 0}))
    assert "iterations" in cli.fails("eval", "run", "config.json")
