"""DeepResearcher: both file forms, source and domain filters, EM/F1 over the gold list."""

import collections
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memento.envs import deepresearcher
from memento.envs.deepresearcher import domain_of, load_deepresearcher
from memento.errors import DataError, ValidationError

JSONL = Path(__file__).parent / "fixtures" / "deepresearcher" / "mini.jsonl"


def dev_row(source, question, ground_truth, index):
    return {
        "data_source": source,
        "prompt": [{"content": question, "role": "user"}],
        "ability": "search & question answering",
        "reward_model": {"ground_truth": ground_truth, "style": "unknown"},
        "extra_info": {"index": index, "split": "dev"},
    }


@pytest.fixture
def parquet_file(tmp_path):
    rows = [
        dev_row("tq", "Which country roughly corresponds to the Ottoman empire?", "turkey<|answer_split|>türkiye", "tq_1"),
        dev_row("popqa", "Who is the father of Dan?", "Jacob<|answer_split|>Israel", "popqa_7"),
        dev_row("Bamboogle", "Who was president when Citibank was founded?", "james madison", "bamboogle_3"),
    ]
    path = tmp_path / "dev.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_form(parquet_file):
    tasks = load_deepresearcher(parquet_file)
    assert [task.id for task in tasks] == ["tq_1", "popqa_7", "bamboogle_3"]
    first = tasks[0]
    assert first.question == "Which country roughly corresponds to the Ottoman empire?"
    assert first.gold == ["turkey", "türkiye"] and first.split == "dev" and first.benchmark == "deepresearcher"
    assert [task.source for task in tasks] == ["tq", "popqa", "bamboogle"]
    assert tasks[2].metadata == {"data_source": "Bamboogle", "domain": "out"}
    assert first.metadata["domain"] == "in"


def test_jsonl_form_with_string_or_list_gold():
    tasks = load_deepresearcher(JSONL)
    assert [task.source for task in tasks] == ["nq", "hotpotqa", "musique", "bamboogle"]
    assert tasks[0].gold == ["London", "London, England"] and tasks[0].id == "nq-1"
    assert tasks[3].gold == ["Neil Armstrong", "Neil Alden Armstrong"]


def test_source_and_domain_filters():
    assert [task.source for task in load_deepresearcher(JSONL, sources=["BAMBOOGLE", "nq"])] == ["nq", "bamboogle"]
    assert [task.source for task in load_deepresearcher(JSONL, domain="in")] == ["nq", "hotpotqa"]
    assert [task.source for task in load_deepresearcher(JSONL, domain="out")] == ["musique", "bamboogle"]
    with pytest.raises(ValidationError, match="popqa"):
        load_deepresearcher(JSONL, sources=["popqa"])
    with pytest.raises(ValidationError, match="domain"):
        load_deepresearcher(JSONL, domain="sideways")


def test_domain_tags():
    assert [domain_of(s) for s in ["nq", "tq", "hotpotqa", "2wiki"]] == ["in"] * 4
    assert [domain_of(s) for s in ["musique", "Bamboogle", "popqa"]] == ["out"] * 3
    assert domain_of("fictional") == "unknown"


def test_score_em_and_f1_over_the_gold_list():
    task = load_deepresearcher(JSONL)[0]
    assert deepresearcher.score(task, "london, england.") == {"em": 1.0, "f1": 1.0}
    partial = deepresearcher.score(task, "It was held in London")
    assert partial["em"] == 0.0 and partial["f1"] == pytest.approx(2 * 0.2 * 1 / 1.2)
    assert deepresearcher.score(task, None) == {"em": 0.0, "f1": 0.0}


def test_search_r1_style_nested_targets(tmp_path):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.Table.from_pylist([dev_row("nq", "Capital of France?", {"target": ["Paris", "paris, france"]}, "nq_9")]), path)
    assert load_deepresearcher(path)[0].gold == ["Paris", "paris, france"]


def test_malformed_rows_are_data_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "data_source": "nq"}\n')
    with pytest.raises(DataError, match="ground_truth"):
        load_deepresearcher(bad)
    bad.write_text('{"question": "q", "ground_truth": "<|answer_split|>", "data_source": "nq"}\n')
    with pytest.raises(DataError, match="holds no answer"):
        load_deepresearcher(bad)
    bad.write_text("not json\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_deepresearcher(bad)


@pytest.mark.shared_data
def test_real_dev_parquet(shared_data):
    path = shared_data / "deepresearcher" / "dev.parquet"
    tasks = load_deepresearcher(path)
    assert len(tasks) == 875
    assert collections.Counter(task.source for task in tasks) == {
        source: 125 for source in ["nq", "tq", "hotpotqa", "2wiki", "musique", "popqa", "bamboogle"]
    }
    assert collections.Counter(task.metadata["domain"] for task in tasks) == {"in": 500, "out": 375}
    assert len({task.id for task in tasks}) == 875
    assert all(task.question and task.gold for task in tasks)
    turkey = next(task for task in tasks if task.id == "tq_qg_3477")
    assert "turkey" in turkey.gold and deepresearcher.score(turkey, "Turkey")["em"] == 1.0
    assert len(load_deepresearcher(path, sources=["Bamboogle"], limit=10, seed=0)) == 10
