"""Scores that compare a model with and without an adapter, each with a bootstrap 95% interval.

    scores = probe(model, tokenizer, heldout=data.heldout, general_text=PROBE_PASSAGES, general_qa=GENERAL_QA)
    scores["heldout_logprob"].mean, scores["heldout_logprob"].ci

Every score is a mean over items (examples, passages, questions), so its interval comes from a
percentile bootstrap over those items:
- `*_logprob`: mean log-probability per token of the gold reply given the prompt (teacher forced);
- `*_em`, `*_f1`: the greedy reply's final answer against the gold one (`memento.judge.em_f1`), in %;
- `general_ppl`: perplexity of held-out general text (exp of the mean per-passage token NLL);
- `general_qa_logprob`: the known answer's log-probability per token, given the general question;
- `general_qa_accuracy`: % of general questions whose greedy reply contains a known answer.
Generation is the costly part on a CPU (a greedy reply costs a forward pass per token), so
`generate=False` measures the teacher-forced scores only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memento.distill.general_text import GeneralQuestion
from memento.distill.model import (
    IGNORE,
    collate,
    example_tokens,
    import_training,
    pad_id,
    text_tokens,
)
from memento.distill.selection import Example, answer_of
from memento.judge import em_f1, normalize_answer

BOOTSTRAP_RESAMPLES = 2000
QA_PROMPT = "Answer in a few words. {question}"
REPLY_MARGIN = 8
"""Tokens a held-out reply may run past its gold completion's length before it is cut."""


@dataclass
class Score:
    """A mean over items with its percentile-bootstrap 95% interval and the per-item values."""

    mean: float
    ci: tuple[float, float]
    n: int
    values: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci95": list(self.ci), "n": self.n}


def score_of(values: Sequence[float], *, transform: Callable[[float], float] = lambda x: x, seed: int = 0) -> Score:
    """Mean of `values` (through `transform`, e.g. exp for perplexity) with its bootstrap 95% interval."""
    array = np.asarray(values, dtype=float)
    if not len(array):
        return Score(mean=float("nan"), ci=(float("nan"), float("nan")), n=0, values=[])
    means = array[np.random.default_rng(seed).integers(0, len(array), (BOOTSTRAP_RESAMPLES, len(array)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Score(mean=transform(float(array.mean())), ci=(transform(float(low)), transform(float(high))),
                 n=len(array), values=array.tolist())


def probe(model: Any, tokenizer: Any, *, heldout: Sequence[Example] = (), general_text: Sequence[str] = (),
          general_qa: Sequence[GeneralQuestion] = (), generate: bool = True, prefix: str = "heldout",
          max_new_tokens: int | None = None, batch_size: int = 8) -> dict[str, Score]:
    """Every score the gate reads, for the model as it is now (adapter on or off is the caller's choice).

    A held-out reply may run to `max_new_tokens`; by default, the longest held-out completion's
    tokens plus `REPLY_MARGIN`: the completion holds the plan before "Answer: ...", and a fixed
    16 tokens cut every reply off before its answer, so EM read 0 for an adapter that had learned
    its cases word for word.
    """
    scores: dict[str, Score] = {}
    if heldout:
        scores[f"{prefix}_logprob"] = score_of(reply_logprobs(model, tokenizer, heldout, batch_size=batch_size))
        if generate:
            budget = max_new_tokens or reply_budget(tokenizer, heldout)
            replies = greedy_replies(model, tokenizer, [e.chat() for e in heldout], budget, batch_size)
            graded = [em_f1(answer_of(r), [e.answer]) for r, e in zip(replies, heldout)]
            scores[f"{prefix}_em"] = score_of([100 * g["em"] for g in graded])
            scores[f"{prefix}_f1"] = score_of([100 * g["f1"] for g in graded])
    if general_text:
        nll = passage_nll(model, tokenizer, general_text, batch_size=batch_size)
        scores["general_ppl"] = score_of(nll, transform=math.exp)
    if general_qa:
        asked = [Example(case_id=f"general-{i}", messages=(("user", QA_PROMPT.format(question=q.question)),),
                         completion=q.answers[0], answer=q.answers[0]) for i, q in enumerate(general_qa)]
        scores["general_qa_logprob"] = score_of(reply_logprobs(model, tokenizer, asked, batch_size=batch_size))
    if general_qa and generate:
        prompts = [e.chat() for e in asked]
        replies = greedy_replies(model, tokenizer, prompts, 16, batch_size)
        scores["general_qa_accuracy"] = score_of([100.0 * contains_answer(r, q.answers) for r, q in zip(replies, general_qa)])
    return scores


def reply_budget(tokenizer: Any, examples: Sequence[Example]) -> int:
    """New tokens that fit the longest of these examples' completions, with `REPLY_MARGIN` to spare."""
    return max(len(tokenizer(e.completion, add_special_tokens=False)["input_ids"]) for e in examples) + REPLY_MARGIN


def contains_answer(reply: str, answers: Sequence[str]) -> bool:
    """True when the normalised reply holds a normalised answer as whole words."""
    words = f" {normalize_answer(reply)} "
    return any(f" {normalize_answer(a)} " in words for a in answers if normalize_answer(a))


def reply_logprobs(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_length: int = 512,
                   batch_size: int = 8) -> list[float]:
    """Mean log-probability per token of each example's gold reply, given its prompt."""
    rows = [example_tokens(tokenizer, e, max_length) for e in examples]
    return [-nll for nll in _token_nll(model, tokenizer, rows, batch_size)]


def passage_nll(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int = 512,
                batch_size: int = 8) -> list[float]:
    """Mean negative log-likelihood per token of each text."""
    return _token_nll(model, tokenizer, [text_tokens(tokenizer, t, max_length) for t in texts], batch_size)


def _token_nll(model: Any, tokenizer: Any, rows: list, batch_size: int) -> list[float]:
    torch, _, _ = import_training()
    device = next(model.parameters()).device
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start:start + batch_size], pad_id(tokenizer)).to(str(device))
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
            labels = batch.labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
            mask = (labels != IGNORE).float()
            out += ((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()
    return out


def greedy_replies(model: Any, tokenizer: Any, conversations: Sequence[list[dict[str, str]]], max_new_tokens: int,
                   batch_size: int = 8) -> list[str]:
    """Greedy replies to chat conversations, generated in left-padded batches."""
    torch, _, _ = import_training()
    device = next(model.parameters()).device
    replies: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the last column, so pad on the left
    try:
        for start in range(0, len(conversations), batch_size):
            texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                     for c in conversations[start:start + batch_size]]
            inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                        top_p=None, top_k=None, pad_token_id=pad_id(tokenizer))
            width = inputs["input_ids"].shape[1]
            replies += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return replies


def adapter_off(model: Any) -> contextlib.AbstractContextManager:
    """A context in which a peft model runs as its base (a plain model is its own base)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
