"""The registry: one way to load and score every task source."""

from pathlib import Path

import pytest

from memento.envs import SOURCES, load_tasks, score
from memento.envs.task import Task, select, shared_data_dir
from memento.errors import DataError, ValidationError

FIXTURES = Path(__file__).parent / "fixtures"

FIXTURE_PATHS = {
    "gaia": FIXTURES / "gaia" / "2023" / "validation",
    "deepresearcher": FIXTURES / "deepresearcher" / "mini.jsonl",
    "simpleqa": FIXTURES / "simpleqa_mini.csv",
    "hle": FIXTURES / "hle_mini.jsonl",
    "qa": FIXTURES / "qa" / "hotpotqa_3.jsonl",
    "fictional": None,
}


def test_every_source_is_registered():
    assert set(SOURCES) == set(FIXTURE_PATHS)


@pytest.mark.parametrize("name", sorted(FIXTURE_PATHS))
def test_load_and_score_each_source(name):
    tasks = load_tasks(name, FIXTURE_PATHS[name], limit=2, seed=0)
    assert len(tasks) == 2 and all(isinstance(task, Task) and task.benchmark == name for task in tasks)
    for task in tasks:
        right, wrong = score(task, task.gold[0]), score(task, "zzz qqq")
        assert right["em"] == 1.0 and wrong["em"] == 0.0
        assert all(isinstance(value, float) for value in right.values())


def test_unknown_source_and_missing_paths():
    with pytest.raises(ValidationError, match="'nope' is not one of"):
        load_tasks("nope")
    for name in ("gaia", "hle"):
        with pytest.raises(ValidationError, match="pass path="):
            load_tasks(name)
    with pytest.raises(DataError, match="does not exist"):
        load_tasks("simpleqa", FIXTURES / "absent.csv")


def test_shared_data_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMENTO_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    with pytest.raises(DataError, match="MEMENTO_SHARED_DATA"):
        load_tasks("deepresearcher")


def test_select_shuffles_by_seed_then_limits():
    tasks = [Task(id=str(i), question=f"q{i}", gold=["a"], benchmark="qa", source="qa") for i in range(20)]
    assert select(tasks) == tasks and select(tasks, 3) == tasks[:3]
    assert select(tasks, seed=1) == select(tasks, seed=1) != tasks
    assert select(tasks, 5, seed=1) == select(tasks, seed=1)[:5]
    with pytest.raises(ValidationError, match="limit"):
        select(tasks, -1)


@pytest.mark.shared_data
def test_defaults_read_the_shared_data(shared_data):
    assert shared_data_dir() == shared_data
    assert len(load_tasks("deepresearcher", sources=["nq"])) == 125
    assert load_tasks("qa", name="bamboogle", limit=1)[0].source == "bamboogle"
    assert len(load_tasks("simpleqa", limit=7, seed=2)) == 7
