"""Which cases become examples: reward, usefulness, near-duplicates, the held-out split, provenance."""

import numpy as np

from memento.distill import SelectionConfig, select_examples
from memento.distill.selection import answer_of, case_example
from tests.distill.conftest import FACTS


def test_successes_only_and_the_repeated_task_dropped(fact_bank):
    data = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0))
    tasks = [e.messages[-1][1] for e in data.train]
    assert len(data.train) == len(FACTS)  # 7 successes, the second "Zorvik Labs" dropped
    assert data.provenance["considered"] == len(FACTS) + 1 and data.provenance["near_duplicates_dropped"] == 1
    assert not any("Plexa" in t for t in tasks)  # the failure is not distilled


def test_a_lower_similarity_threshold_drops_more(fact_bank):
    strict = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, dedup_similarity=0.2))
    assert len(strict.train) < len(FACTS)


def test_heldout_slice_and_provenance(fact_bank):
    data = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.34, seed=3))
    provenance = data.provenance
    assert len(data.heldout) == 2 and len(data.train) == len(FACTS) - 2
    assert set(provenance["train_case_ids"]).isdisjoint(provenance["heldout_case_ids"])
    assert provenance["bank_cases"] == len(fact_bank) and provenance["bank_generation"] >= 1
    again = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.34, seed=3))
    assert again.provenance["data_hash"] == provenance["data_hash"]  # same cases, same split: same hash
    other = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.34, seed=4))
    assert other.provenance["data_hash"] != provenance["data_hash"]


def test_policy_usefulness_filters(fact_bank):
    def usefulness(cases):  # a stand-in for a learned policy's `usefulness`: prefers one case
        return np.array([1.0 if "Quillograph" in c.task else 0.0 for c in cases])

    data = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, min_usefulness=0.5), usefulness=usefulness)
    assert [e.answer for e in data.train] == ["Seren Baxo"]


def test_the_example_shows_the_task_and_teaches_plan_and_answer(fact_bank):
    case = next(c for c in fact_bank.iter_cases() if c.answer == "Kastavo")
    example = case_example(case)
    assert example.chat()[-1]["content"].endswith(case.task)
    assert example.completion == "Plan:\n1. search the question\n2. read the answer\nAnswer: Kastavo"
    assert answer_of(example.completion) == "Kastavo" and answer_of("Kastavo\nmore") == "Kastavo"


def test_similar_cases_as_context(fact_bank):
    data = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, context="cases", context_cases=1))
    prompt = data.train[0].messages[-1][1]
    assert "Similar solved task:" in prompt and "Its answer:" in prompt
