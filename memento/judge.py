"""Grading an answer against gold answers: rule-based EM and token F1, and the LLM judge.

    em_f1("Ada  Brill.", ["Ada Brill"])          # {"em": 1.0, "f1": 1.0}

    verdict = judge_answer(llm, "Who founded Acme?", "Ada Brill", ["Ada Brill"])
    verdict.grade, verdict.score, verdict.rationale, verdict.prompt_id

The agent grades its own episodes with it when no scorer is given, and the evals use it for
DeepResearcher's PM ("partial match": semantically the same as a gold answer) and SimpleQA's
three grades. The prompt's hash goes with every verdict, so a run says which prompt graded it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from memento.errors import StructuredOutputError, ValidationError

if TYPE_CHECKING:
    from memento.llm import LLM

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalize_answer(text: str | None) -> str:
    """Lowercase, turn punctuation into spaces, collapse whitespace (DeepResearcher's rule)."""
    if not text:
        return ""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def exact_match(prediction: str | None, gold: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in gold))


def token_f1(prediction: str | None, gold: Sequence[str]) -> float:
    """Token-overlap F1 between prediction and gold answer, the max over the gold list."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in gold:
        expected = normalize_answer(answer).split()
        overlap = sum((Counter(predicted) & Counter(expected)).values())
        if overlap:
            precision, recall = overlap / len(predicted), overlap / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def em_f1(prediction: str | None, gold: Sequence[str]) -> dict[str, float]:
    """{"em", "f1"}: the rule-based scores of the short-answer QA sources."""
    return {"em": exact_match(prediction, gold), "f1": token_f1(prediction, gold)}


Grade = Literal["correct", "incorrect", "not_attempted"]
GRADES: tuple[Grade, ...] = ("correct", "incorrect", "not_attempted")

JUDGE_PROMPT = """You grade an answer to a question against the gold answer(s).

Question: {question}
Gold answer(s): {gold}
Predicted answer: {prediction}

Grades:
- correct: the prediction states the same fact as at least one gold answer. Wording, spelling \
variants, abbreviations, extra context that does not contradict it, and rounding within the \
precision of the gold answer are all fine.
- incorrect: the prediction states a different answer, contradicts the gold answer, or hedges \
between several candidates one of which is wrong.
- not_attempted: the prediction gives no answer (says it does not know, asks for more \
information, or is empty) and contradicts nothing.

Judge only whether the prediction matches the gold answer; do not use your own knowledge of the \
question. Reply with JSON: {{"rationale": "<one or two sentences>", "grade": "correct" | \
"incorrect" | "not_attempted"}}"""

JUDGE_PROMPT_ID = hashlib.sha256(JUDGE_PROMPT.encode()).hexdigest()[:12]
"""Short hash of the prompt text, recorded with each verdict so runs say which prompt graded them."""


class JudgeReply(BaseModel):
    """What the judge model is asked to produce."""

    # Bounded in the schema only: constrained decoding then cannot ramble past max_tokens (small
    # models do), while a longer rationale from an unconstrained backend still validates.
    rationale: str = Field(json_schema_extra={"maxLength": 300})
    grade: Grade


class Verdict(BaseModel):
    """A judge's grade for one prediction, with what is needed to audit it later."""

    grade: Grade
    rationale: str = ""
    judge_model: str = ""
    prompt_id: str = JUDGE_PROMPT_ID
    parsed_from: Literal["json", "text", "unparseable"] = "json"
    """How the grade was read: constrained JSON, words in a plain reply, or not at all (graded incorrect)."""
    raw_reply: str = Field(default="", repr=False)

    @property
    def correct(self) -> bool:
        return self.grade == "correct"

    @property
    def score(self) -> float:
        """1.0 for correct, else 0.0: DeepResearcher's PM and judged accuracy."""
        return float(self.correct)


def judge_messages(question: str, prediction: str | None, gold: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages the judge sees, so a runner can store exactly what was asked."""
    if not gold:
        raise ValidationError(f"cannot judge {question[:60]!r}: it has no gold answer")
    shown = (prediction or "").strip() or "(empty)"
    text = JUDGE_PROMPT.format(question=question, gold=" | ".join(gold), prediction=shown)
    return [{"role": "user", "content": text}]


_GRADE_WORD = re.compile(r"not[\s_-]*attempted|not[\s_-]+correct|incorrect|correct", re.IGNORECASE)


def parse_verdict_text(text: str) -> tuple[Grade, str, Literal["json", "text", "unparseable"]]:
    """Read (grade, rationale, how) from a free-text reply: an embedded JSON object, else grade words.

    With grade words, the last one counts, since models state the grade after their reasoning.
    A reply with neither is graded incorrect and marked 'unparseable' so the runner can count it.
    """
    for candidate in re.findall(r"\{.*?\}", text, re.DOTALL):
        try:
            reply = JudgeReply.model_validate(json.loads(candidate))
        except (ValueError, TypeError):
            continue
        return reply.grade, reply.rationale, "json"
    words = _GRADE_WORD.findall(text)
    if not words:
        return "incorrect", text.strip(), "unparseable"
    last = re.sub(r"[\s_-]+", " ", words[-1].lower())
    grade: Grade = {"not attempted": "not_attempted", "not correct": "incorrect"}.get(last, last)  # type: ignore[assignment]
    return grade, text.strip(), "text"


def _verdict_from_reply(reply: Any, judge_model: str) -> Verdict:
    reply = JudgeReply.model_validate(reply if isinstance(reply, dict) else reply.model_dump())
    return Verdict(grade=reply.grade, rationale=reply.rationale, judge_model=judge_model, raw_reply=reply.model_dump_json())


def _verdict_from_text(text: str, judge_model: str) -> Verdict:
    grade, rationale, how = parse_verdict_text(text)
    return Verdict(grade=grade, rationale=rationale, judge_model=judge_model, parsed_from=how, raw_reply=text)


def judge_answer(
    llm: LLM, question: str, prediction: str | None, gold: Sequence[str], *, max_tokens: int = 256
) -> Verdict:
    """Grade `prediction` with the judge `llm` (any memento LLM); the verdict carries its rationale.

    Asks for structured output first; a model that cannot produce it is asked once more in plain
    text, and the grade is read from its words.
    """
    messages = judge_messages(question, prediction, gold)
    model = llm.model
    try:
        reply = llm.structured(messages, JudgeReply, temperature=0.0, max_tokens=max_tokens)
    except StructuredOutputError:
        return _verdict_from_text(llm.complete(messages, temperature=0.0, max_tokens=max_tokens).text, model)
    return _verdict_from_reply(reply, model)


async def ajudge_answer(
    llm: LLM, question: str, prediction: str | None, gold: Sequence[str], *, max_tokens: int = 256
) -> Verdict:
    """Async twin of `judge_answer`."""
    messages = judge_messages(question, prediction, gold)
    model = llm.model
    try:
        reply = await llm.astructured(messages, JudgeReply, temperature=0.0, max_tokens=max_tokens)
    except StructuredOutputError:
        completion = await llm.acomplete(messages, temperature=0.0, max_tokens=max_tokens)
        return _verdict_from_text(completion.text, model)
    return _verdict_from_reply(reply, model)
