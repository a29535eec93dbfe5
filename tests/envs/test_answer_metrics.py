"""EM, token F1, Pass@k and the SimpleQA aggregate."""

import itertools
import math

import pytest

from memento.envs.metrics import em_f1, exact_match, normalize_answer, pass_at_k, simpleqa_aggregate, token_f1
from memento.errors import ValidationError


def test_normalize_lowercases_turns_punctuation_into_spaces_and_collapses_whitespace():
    assert normalize_answer("  Türkiye-Cumhuriyeti,   (Republic)! ") == "türkiye cumhuriyeti republic"
    assert normalize_answer("U.S.A.") == "u s a"
    assert normalize_answer(None) == ""


def test_exact_match_is_the_max_over_gold_answers():
    gold = ["Neil Armstrong", "Neil Alden Armstrong"]
    assert exact_match("neil  alden armstrong.", gold) == 1.0
    assert exact_match("Armstrong", gold) == 0.0
    assert exact_match("", gold) == 0.0


def test_token_f1_partial_overlap_and_max_over_gold():
    # "the city of london" vs "london": precision 1/4, recall 1 -> F1 = 0.4
    assert token_f1("the city of London", ["London"]) == pytest.approx(0.4)
    assert token_f1("the city of London", ["Paris", "city of London"]) == pytest.approx(2 * 0.75 * 1 / 1.75)
    assert token_f1("Paris", ["London"]) == 0.0
    assert token_f1("", ["London"]) == 0.0
    assert em_f1("London!", ["london"]) == {"em": 1.0, "f1": 1.0}


def test_token_f1_counts_repeated_tokens_once_each():
    # prediction "a a a b" vs gold "a b": overlap 2, precision 2/4, recall 1 -> 2/3
    assert token_f1("a a a b", ["a b"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 2), (6, 3, 4), (4, 4, 2), (7, 1, 7)])
def test_pass_at_k_equals_the_fraction_of_k_subsets_holding_a_success(n, c, k):
    attempts = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(attempts, k))
    brute_force = sum(any(subset) for subset in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute_force)


def test_pass_at_1_is_the_success_rate_and_large_n_stays_finite():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    value = pass_at_k(2000, 3, 100)
    assert 0 < value < 1 and math.isfinite(value)


@pytest.mark.parametrize("n,c,k", [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValidationError, match="pass_at_k"):
        pass_at_k(n, c, k)


def test_simpleqa_aggregate_rates_accuracy_given_attempted_and_f1():
    grades = ["correct"] * 3 + ["incorrect"] * 1 + ["not_attempted"] * 4
    summary = simpleqa_aggregate(grades)
    assert summary["correct"] == pytest.approx(3 / 8)
    assert summary["incorrect"] == pytest.approx(1 / 8)
    assert summary["not_attempted"] == pytest.approx(4 / 8)
    assert summary["accuracy_given_attempted"] == pytest.approx(3 / 4)
    assert summary["f1"] == pytest.approx(2 * (3 / 8) * (3 / 4) / (3 / 8 + 3 / 4))


def test_simpleqa_aggregate_with_nothing_attempted_and_bad_input():
    assert simpleqa_aggregate(["not_attempted"] * 2) == {
        "correct": 0.0, "incorrect": 0.0, "not_attempted": 1.0, "accuracy_given_attempted": 0.0, "f1": 0.0,
    }
    with pytest.raises(ValidationError, match="maybe"):
        simpleqa_aggregate(["correct", "maybe"])
    with pytest.raises(ValidationError, match="at least one"):
        simpleqa_aggregate([])
