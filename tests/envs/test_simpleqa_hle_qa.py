"""SimpleQA, HLE and the R1-Searcher QA sets: loaders on fixtures, scorers, and the real shared files."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memento.envs import hle, qa, simpleqa
from memento.envs.hle import extract_choice, load_hle
from memento.envs.qa import load_qa
from memento.envs.simpleqa import load_simpleqa
from memento.errors import DataError, ValidationError

FIXTURES = Path(__file__).parent / "fixtures"


# --- SimpleQA ------------------------------------------------------------------------------

def test_simpleqa_csv_with_python_dict_metadata():
    tasks = load_simpleqa(FIXTURES / "simpleqa_mini.csv")
    assert [task.id for task in tasks] == ["simpleqa-1", "simpleqa-2", "simpleqa-3"]
    assert tasks[1].question == "Who invented the Zelvoscope, a measuring instrument?"
    assert tasks[1].gold == ["Ilsa Varnholt"]
    assert tasks[1].metadata == {
        "topic": "Science and technology", "answer_type": "Person", "urls": ["https://example.org/b", "https://example.org/c"],
    }
    assert [task.id for task in load_simpleqa(FIXTURES / "simpleqa_mini.csv", topics=["Music"])] == ["simpleqa-3"]
    assert simpleqa.score(tasks[0], "the vell") == {"em": 1.0, "f1": 1.0}


def test_simpleqa_bad_metadata_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('metadata,problem,answer\n"{\'topic\': ",q,a\n')
    with pytest.raises(DataError, match="row 1"):
        load_simpleqa(bad)


@pytest.mark.shared_data
def test_real_simpleqa_csv(shared_data):
    tasks = load_simpleqa(shared_data / "simpleqa" / "simple_qa_test_set.csv")
    assert len(tasks) == 4326
    assert tasks[0].question == "Who received the IEEE Frank Rosenblatt Award in 2010?" and tasks[0].gold == ["Michio Sugeno"]
    assert all(isinstance(task.metadata["urls"], list) and task.metadata["topic"] for task in tasks)


# --- HLE -----------------------------------------------------------------------------------

def test_hle_jsonl_skips_image_rows_and_keeps_fields():
    tasks = load_hle(FIXTURES / "hle_mini.jsonl")
    assert [task.id for task in tasks] == ["hle-mini-1", "hle-mini-2"]
    assert tasks[0].metadata["answer_type"] == "multipleChoice" and tasks[0].metadata["category"] == "Math"
    assert tasks[1].gold == ["W"] and tasks[1].metadata["raw_subject"] == "Chemistry"
    assert len(load_hle(FIXTURES / "hle_mini.jsonl", text_only=False)) == 3
    assert [task.id for task in load_hle(FIXTURES / "hle_mini.jsonl", answer_types=["exactMatch"])] == ["hle-mini-2"]


def test_hle_parquet_with_capitalised_question(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "hle_mini.jsonl").read_text().splitlines()]
    for row in rows:
        row["Question"] = row.pop("question")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hle.parquet")
    tasks = load_hle(tmp_path / "hle.parquet")
    assert [task.question for task in tasks] == [task.question for task in load_hle(FIXTURES / "hle_mini.jsonl")]
    assert load_hle(tmp_path / "hle.parquet", categories=["Chemistry"])[0].id == "hle-mini-2"


def test_hle_rejects_unknown_answer_type(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "q", "answer": "a", "answer_type": "essay"}) + "\n")
    with pytest.raises(DataError, match="essay"):
        load_hle(bad)


@pytest.mark.parametrize("prediction,letter", [
    ("C", "C"), ("(C) 29", "C"), ("C. 29", "C"), ("The answer is C.", "C"), ("Answer: c", None),
    ("answer: (B)", "B"), ("I think the answer is D because 33 = 3 * 11", "D"), ("29", None), ("", None),
    ("Clearly 29", None),
])
def test_extract_choice(prediction, letter):
    assert extract_choice(prediction) == letter


def test_hle_scores_letters_for_multiple_choice_and_em_otherwise():
    choice, exact = load_hle(FIXTURES / "hle_mini.jsonl")
    assert hle.score(choice, "The answer is C") == {"em": 1.0}
    assert hle.score(choice, "B") == {"em": 0.0}
    assert hle.score(exact, " w ") == {"em": 1.0}
    assert hle.score(exact, "Tungsten") == {"em": 0.0}


# --- R1-Searcher QA sets -------------------------------------------------------------------

def test_qa_jsonl_with_blank_lines_and_list_answers():
    tasks = load_qa(FIXTURES / "qa" / "hotpotqa_3.jsonl")
    assert [task.id for task in tasks] == ["hotpotqa-1", "hotpotqa-2", "hotpotqa-3"]
    assert tasks[1].gold == ["English", "French"]
    assert all(task.source == "hotpotqa" and task.metadata["domain"] == "in" for task in tasks)
    assert qa.score(tasks[1], "french") == {"em": 1.0, "f1": 1.0}
    assert len(load_qa(FIXTURES / "qa" / "hotpotqa_3.jsonl", limit=2, seed=1)) == 2


def test_qa_unknown_set_name():
    with pytest.raises(ValidationError, match="nonesuch"):
        load_qa(name="nonesuch")


@pytest.mark.shared_data
@pytest.mark.parametrize("name,rows,domain", [("hotpotqa", 500, "in"), ("2wiki", 500, "in"), ("musique", 500, "out"), ("bamboogle", 125, "out")])
def test_real_qa_sets(shared_data, name, rows, domain):
    tasks = load_qa(shared_data / "qa" / qa.FILES[name])
    assert len(tasks) == rows and len({task.id for task in tasks}) == rows
    assert all(task.source == name and task.metadata["domain"] == domain and task.gold for task in tasks)
