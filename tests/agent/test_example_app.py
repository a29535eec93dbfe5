"""The example app (examples/research_assistant.py) runs end to end with the embedded SmolLM2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research_assistant.py"


def load_example():
    spec = importlib.util.spec_from_file_location("research_assistant", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_router_sends_questions_to_the_agent():
    example = load_example()
    assert example.route({"message": "hi there"})["route"] == "chat"
    assert example.route({"message": "In which city was the founder of Acme born?"})["route"] == "research"


@pytest.mark.slow
def test_the_example_app_with_smollm2(tmp_path, smollm2, capsys):
    from memento import CaseBank

    outputs = load_example().main(["--questions", "1", "--workdir", str(tmp_path)], llm=smollm2)
    greeting, research = outputs
    assert greeting["route"] == "chat" and "answer" not in greeting
    assert research["route"] == "research" and research["reward"] in (0.0, 1.0)
    assert research["case_id"] and research["reply"]
    with CaseBank(tmp_path / "cases.db") as bank:
        assert bank.get(research["case_id"]).task == research["task"]
    assert "1 cases in" in capsys.readouterr().out
