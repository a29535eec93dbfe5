"""Answer metrics shared by every task source: EM, token F1, Pass@k, SimpleQA rates, an LLM judge.

Normalisation follows DeepResearcher: lowercase, punctuation to spaces, whitespace collapsed.
The judge grades correct / incorrect / not attempted, which gives both DeepResearcher's PM
("partial match": semantically the same as a gold answer) and SimpleQA's three grades.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from memento.errors import ValidationError

# Grading lives in the library (the agent grades with it: EM/F1 and the judge); benchmarks import it from here too.
from memento.judge import (  # noqa: F401
    GRADES, JUDGE_PROMPT, JUDGE_PROMPT_ID, Grade, JudgeReply, Verdict, ajudge_answer, em_f1, exact_match,
    judge_answer, judge_messages, normalize_answer, parse_verdict_text, token_f1,
)

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k from n attempts with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValidationError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # The product form avoids the huge binomials of the textbook formula.
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def simpleqa_aggregate(grades: Iterable[str]) -> dict[str, float]:
    """SimpleQA's summary: the three grade rates, accuracy given attempted, and their F1.

    F1 is the harmonic mean of the overall correct rate and accuracy given attempted, as in
    OpenAI simple-evals.
    """
    counts = Counter(grades)
    unknown = set(counts) - set(GRADES)
    if unknown:
        raise ValidationError(f"grades {sorted(unknown)} are not among {GRADES}")
    total = sum(counts.values())
    if total == 0:
        raise ValidationError("simpleqa_aggregate needs at least one grade")
    rates = {grade: counts[grade] / total for grade in GRADES}
    attempted = counts["correct"] + counts["incorrect"]
    given_attempted = counts["correct"] / attempted if attempted else 0.0
    both = rates["correct"] + given_attempted
    return {
        **rates,
        "accuracy_given_attempted": given_attempted,
        "f1": 2 * rates["correct"] * given_attempted / both if both else 0.0,
    }
