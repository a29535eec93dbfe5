"""The LLM judge: the prompt it sends, JSON and plain-text replies, the verdict it returns.

The judge model is a ScriptedLLM here: these tests are about reading replies, not about how
well a given model grades.
"""

import asyncio
import json

import pytest

from memento.envs.metrics import GRADES, JUDGE_PROMPT_ID, ajudge_answer, judge_answer, judge_messages, parse_verdict_text
from memento.errors import ValidationError
from memento.llm import ScriptedLLM

QUESTION = "In which city was the founder of Zorvex Dynamics born?"
GOLD = ["Travenno", "Travenno city"]


def json_judge(grade, rationale="same city"):
    return ScriptedLLM(lambda messages: json.dumps({"rationale": rationale, "grade": grade}), model="judge-x")


def test_judge_sends_question_gold_and_prediction_and_returns_the_verdict():
    llm = json_judge("correct", "Both name Travenno.")
    verdict = judge_answer(llm, QUESTION, "It was Travenno.", GOLD)
    assert (verdict.grade, verdict.rationale, verdict.parsed_from) == ("correct", "Both name Travenno.", "json")
    assert verdict.correct and verdict.score == 1.0
    assert verdict.judge_model == "judge-x" and verdict.prompt_id == JUDGE_PROMPT_ID
    asked = llm.calls[0].messages[-1]["content"]
    assert QUESTION in asked and "It was Travenno." in asked and "Travenno | Travenno city" in asked
    assert llm.calls[0].temperature == 0.0
    assert asked == judge_messages(QUESTION, "It was Travenno.", GOLD)[0]["content"]


@pytest.mark.parametrize("grade", ["incorrect", "not_attempted"])
def test_judge_other_grades_score_zero(grade):
    verdict = judge_answer(json_judge(grade), QUESTION, "Kelmora", GOLD)
    assert verdict.grade == grade and verdict.score == 0.0


def test_plain_text_reply_is_read_after_structured_output_fails():
    llm = ScriptedLLM(lambda messages: "The prediction names the same city as the gold answer. Grade: correct")
    verdict = judge_answer(llm, QUESTION, "Travenno", GOLD)
    assert verdict.grade == "correct" and verdict.parsed_from == "text"
    assert "same city" in verdict.rationale
    assert len(llm.calls) == 3  # structured try, its repair, then one plain completion


def test_empty_prediction_is_shown_to_the_judge_as_empty():
    llm = json_judge("not_attempted")
    judge_answer(llm, QUESTION, "   ", GOLD)
    assert "Predicted answer: (empty)" in llm.calls[0].messages[-1]["content"]


def test_unparseable_reply_is_graded_incorrect_and_marked():
    verdict = judge_answer(ScriptedLLM(lambda messages: "I cannot say."), QUESTION, "Travenno", GOLD)
    assert verdict.grade == "incorrect" and verdict.parsed_from == "unparseable"
    assert verdict.raw_reply == "I cannot say."


@pytest.mark.parametrize("text,grade", [
    ('Sure: {"rationale": "differs", "grade": "incorrect"} done', "incorrect"),
    ("It looks correct at first, but the years differ, so: INCORRECT", "incorrect"),
    ("The answer is not correct.", "incorrect"),
    ("Not incorrect, in fact: correct", "correct"),  # the last grade word wins
    ("No answer was given. Grade: Not attempted", "not_attempted"),
    ("grade = not_attempted", "not_attempted"),
])
def test_parse_verdict_text(text, grade):
    assert parse_verdict_text(text)[0] == grade


def test_async_twin_gives_the_same_verdict():
    verdict = asyncio.run(ajudge_answer(json_judge("correct"), QUESTION, "Travenno", GOLD))
    assert verdict.grade == "correct" and verdict.parsed_from == "json"
    text_llm = ScriptedLLM(lambda messages: "not attempted")
    assert asyncio.run(ajudge_answer(text_llm, QUESTION, "", GOLD)).grade == "not_attempted"


def test_judging_without_gold_is_refused():
    with pytest.raises(ValidationError, match="no gold answer"):
        judge_answer(json_judge("correct"), QUESTION, "Travenno", [])


@pytest.mark.slow
def test_real_smollm2_judge_gives_a_schema_valid_verdict():
    """With llama.cpp's grammar-constrained decoding the embedded model must produce the JSON verdict."""
    from memento.llm import load_llm

    llm = load_llm("llamacpp")
    verdict = judge_answer(llm, "What is the capital of France?", "Paris", ["Paris"])
    assert verdict.parsed_from == "json" and verdict.grade in GRADES
    assert verdict.judge_model and verdict.raw_reply
