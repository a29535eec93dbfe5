import json

import pytest

from memento.evals.config import EvalConfig, TaskSpec


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def fictional_config(tmp_path):
    """A small iterated run on the generated fictional suite; tests override what they need."""

    def make(**overrides):
        values = dict(
            out_dir=tmp_path / "run",
            tasks=TaskSpec(source="fictional", limit=4, options={"n_entities": 40}),
            arms=["none", "similarity"],
            iterations=2,
            concurrency=2,
        )
        return EvalConfig(**{**values, **overrides})

    return make


@pytest.fixture
def split_files(tmp_path):
    """A train set (R1-Searcher format) and a DeepResearcher-format test set with in- and out-of-domain
    sources, whose first question repeats a train question in other case and punctuation."""
    train = write_jsonl(tmp_path / "hotpotqa_train.jsonl", [
        {"idx": 1, "question": "Who founded the Vellmora Shipping Company?", "answer": "Ada Vell"},
        {"idx": 2, "question": "In which city was Borin Tal born?", "answer": "Dunmere"},
        {"idx": 3, "question": "What river flows through Quarry Bay?", "answer": "Orlen"},
    ])
    test = write_jsonl(tmp_path / "dr_test.jsonl", [
        {"id": "t1", "question": "who founded the vellmora shipping company", "ground_truth": "Ada Vell",
         "data_source": "hotpotqa"},
        {"id": "t2", "question": "Which company did Cara Moss found?", "ground_truth": "Mossworks",
         "data_source": "musique"},
        {"id": "t3", "question": "Where was Elric Fen born?", "ground_truth": "Fenmark<|answer_split|>Fen Mark",
         "data_source": "bamboogle"},
    ])
    return train, test
