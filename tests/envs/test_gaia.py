"""GAIA: the loader on a fixture in GAIA's 2023 format, and the official scorer's tricky cases."""

import shutil
from pathlib import Path

import pytest

from memento.envs import gaia
from memento.envs.gaia import load_gaia, question_scorer
from memento.errors import DataError, ValidationError

GAIA = Path(__file__).parent / "fixtures" / "gaia" / "2023"


def test_load_validation_split_reads_fields_levels_and_attachments():
    tasks = load_gaia(GAIA / "validation")
    assert [task.id for task in tasks] == ["f0c1a2b3-0001", "f0c1a2b3-0002", "f0c1a2b3-0003", "f0c1a2b3-0004"]
    first = tasks[0]
    assert first.gold == ["1234.5"] and first.benchmark == "gaia" and first.split == "validation"
    assert first.metadata["level"] == 1 and first.metadata["file_name"] == "bakery_sales.csv"
    assert first.metadata["annotator_metadata"]["Number of steps"] == "2"
    assert first.attachments == [GAIA / "validation" / "bakery_sales.csv"]
    assert first.attachments[0].read_text().startswith("month,sales")
    assert tasks[1].attachments == [] and tasks[1].metadata["level"] == 2  # "2" in the file, an int here


def test_level_filter_limit_and_seed():
    assert [task.metadata["level"] for task in load_gaia(GAIA / "validation", levels=[1])] == [1, 1]
    assert [task.id for task in load_gaia(GAIA / "validation" / "metadata.jsonl", levels={3})] == ["f0c1a2b3-0004"]
    shuffled = load_gaia(GAIA / "validation", seed=3)
    assert sorted(task.id for task in shuffled) == sorted(task.id for task in load_gaia(GAIA / "validation"))
    assert load_gaia(GAIA / "validation", seed=3, limit=2) == shuffled[:2]
    with pytest.raises(ValidationError, match="levels"):
        load_gaia(GAIA / "validation", levels=[4])


def test_test_split_hidden_answers_load_unscorable():
    tasks = load_gaia(GAIA / "test")
    assert all(task.gold == [] and not task.scorable for task in tasks)
    assert tasks[0].attachments[0].name == "numbers.txt"
    with pytest.raises(DataError, match="no gold answer"):
        gaia.score(tasks[0], "17")


def test_missing_attachment_and_missing_folder_are_data_errors(tmp_path):
    shutil.copy(GAIA / "validation" / "metadata.jsonl", tmp_path / "metadata.jsonl")
    with pytest.raises(DataError, match="bakery_sales.csv"):
        load_gaia(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_gaia(tmp_path / "nowhere")


@pytest.mark.parametrize("prediction,gold,expected", [
    # numbers: $ % and thousands commas are stripped, then compared as floats
    ("$1,234.50", "1234.5", True),
    ("1234.50", "1234.5", True),
    ("45%", "45", True),
    (" 17 ", "17", True),
    ("17.0", "17", True),
    ("1,234", "1234", True),
    ("17 km", "17", False),       # other units are not stripped: the official scorer says no
    ("seventeen", "17", False),
    ("18", "17", False),
    # lists: split on , or ;, same length, element-wise; numbers as numbers
    ("blue,green,red", "blue, green, red", True),
    ("Blue; Green; Red", "blue, green, red", True),
    ("blue, red", "blue, green, red", False),
    ("red, green, blue", "blue, green, red", False),
    ("366;365.0", "366; 365", True),
    ("$366; 365", "366; 365", True),
    ("366; 364", "366; 365", False),
    ("St. Louis, Paris", "St Louis, Paris", False),  # in lists punctuation is kept
    # text: whitespace and punctuation removed, lowercased
    ("mr whiskers", "Mr. Whiskers", True),
    ("MR. WHISKERS!", "Mr. Whiskers", True),
    ("Mrs. Whiskers", "Mr. Whiskers", False),
    ("New York", "new-york", True),
])
def test_official_scorer(prediction, gold, expected):
    assert question_scorer(prediction, gold) is expected


def test_score_returns_em_on_fixture_tasks():
    tasks = {task.id: task for task in load_gaia(GAIA / "validation")}
    assert gaia.score(tasks["f0c1a2b3-0001"], "$1,234.50") == {"em": 1.0}
    assert gaia.score(tasks["f0c1a2b3-0003"], "Mr Whiskers") == {"em": 1.0}
    assert gaia.score(tasks["f0c1a2b3-0004"], "365; 366") == {"em": 0.0}
    assert gaia.score(tasks["f0c1a2b3-0002"], None) == {"em": 0.0}
