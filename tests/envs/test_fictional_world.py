"""The offline task suite: deterministic, answerable from its passages, findable by BM25."""

import collections
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

import bm25s
import pytest

from memento.envs import load_tasks, score
from memento.envs.fictional_world import SHAPES, build_world, load_fictional
from memento.errors import ValidationError

RELATION_WORDS = {
    "founded_by": "founded", "founded_in": "founded", "born_in": "born", "married_to": "married",
    "invented_by": "invented", "headquartered_in": "headquartered", "ceo": "chief executive CEO", "located_in": "city country",
}


@pytest.fixture(scope="module")
def world():
    return build_world(seed=0)


DIGEST_SCRIPT = """
import hashlib, json, sys
from memento.envs.fictional_world import build_world
world = build_world(seed=0)
payload = json.dumps([world.passages, [task.model_dump(mode="json") for task in world.tasks(seed=5)]], sort_keys=True)
print(hashlib.sha256(payload.encode()).hexdigest())
"""


def test_same_seed_same_world_and_questions_even_in_another_process(world):
    assert build_world(seed=0).passages == world.passages
    assert build_world(seed=0).tasks(20, seed=3) == world.tasks(20, seed=3)
    # A child with other string hashing must build the very same world (no set or hash() order leaks in).
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.getcwd()}
    child = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], capture_output=True, text=True, env=env, check=True)
    payload = json.dumps([world.passages, [task.model_dump(mode="json") for task in world.tasks(seed=5)]], sort_keys=True)
    assert child.stdout.strip() == hashlib.sha256(payload.encode()).hexdigest()


def test_other_seeds_give_other_worlds(world):
    other = build_world(seed=1)
    assert other.passages != world.passages
    assert {task.question for task in other.tasks()}.isdisjoint(task.question for task in world.tasks())
    assert world.tasks(10, seed=1) != world.tasks(10, seed=2)


def test_every_hop_fact_is_written_in_the_passage_it_cites(world):
    passages = {passage["id"]: passage for passage in world.passages}
    tasks = world.tasks()
    assert len(tasks) > 60
    for task in tasks:
        hops = task.metadata["hops"]
        assert len(hops) >= 2 and task.metadata["shape"] in SHAPES
        for hop in hops:
            passage = passages[hop["passage_id"]]
            assert passage["title"] == hop["subject"]
            assert hop["subject"] in passage["text"] and hop["object"] in passage["text"]
        if task.metadata["shape"] == "earlier_founded":
            years = {hop["subject"]: int(hop["object"]) for hop in hops}
            assert task.gold == [min(years, key=years.get)] and len(set(years.values())) == 2
        else:
            assert task.gold == [hops[-1]["object"]]
            # a chain: each hop starts where the last one ended
            assert all(later["subject"] == earlier["object"] for earlier, later in zip(hops, hops[1:]))


def test_names_are_unambiguous(world):
    assert len(world.entities) == 120  # every kind in one dict: a name made twice would be lost
    words_of_longer_names = {word for name in world.entities if " " in name for word in name.split()}
    assert words_of_longer_names.isdisjoint(world.entities)  # no city is also a surname
    companies, inventions = world.of_kind("company"), world.of_kind("invention")
    roles = [c.facts["founded_by"] for c in companies] + [c.facts["ceo"] for c in companies]
    roles += [invention.facts["invented_by"] for invention in inventions]
    assert len(set(roles)) == len(roles)  # no founder is a CEO or an inventor too
    for person in world.of_kind("person"):
        if spouse := person.facts.get("married_to"):
            assert world.entities[spouse].facts["married_to"] == person.name != spouse


def test_shapes_take_turns_and_splits_are_disjoint(world):
    first = world.tasks(2 * len(SHAPES), seed=0)
    assert collections.Counter(task.metadata["shape"] for task in first) == {shape: 2 for shape in SHAPES}
    assert len({task.id for task in world.tasks()}) == len(world.tasks())
    train, test = world.tasks(split="train"), world.tasks(split="test")
    assert {task.id for task in train}.isdisjoint(task.id for task in test)
    assert len(train) + len(test) == len(world.tasks())
    assert all(task.split == "train" for task in train) and all(task.split == "test" for task in test)
    assert 0.2 < len(test) / (len(train) + len(test)) < 0.4
    only = world.tasks(shapes=["hq_country"])
    assert {task.metadata["shape"] for task in only} == {"hq_country"} and len(only) == len(world.of_kind("company"))


def test_bad_requests_are_refused(world):
    with pytest.raises(ValidationError, match="bigger world"):
        world.tasks(10_000)
    with pytest.raises(ValidationError, match="shapes"):
        world.tasks(shapes=["nonsense"])
    with pytest.raises(ValidationError, match="split"):
        world.tasks(split="dev")
    with pytest.raises(ValidationError, match="n_entities"):
        build_world(n_entities=10)
    with pytest.raises(ValidationError, match="generated"):
        load_fictional("some/path")


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.jsonl.gz"])
def test_corpus_file_has_the_shared_corpus_form(world, tmp_path, name):
    path = world.write_corpus_jsonl(tmp_path / "sub" / name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert rows == world.passages
    assert all(set(row) == {"id", "title", "text"} for row in rows)


def test_bm25_finds_the_passage_each_hop_needs(world):
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([p["title"] + " " + p["text"] for p in world.passages], stopwords="en", show_progress=False), show_progress=False)

    def top(query, k):
        ids, _ = retriever.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=k, show_progress=False)
        return {world.passages[i]["id"] for i in ids[0]}

    tasks = world.tasks()
    for task in tasks:
        first_hop = task.metadata["hops"][0]
        assert first_hop["passage_id"] in top(task.question, 5), task.question
        for hop in task.metadata["hops"][1:]:
            query = f"{hop['subject']} {RELATION_WORDS[hop['relation']]}"
            assert hop["passage_id"] in top(query, 3), query


def test_registry_loads_and_scores_fictional_tasks():
    tasks = load_tasks("fictional", limit=6, seed=0, world_seed=0)
    assert tasks == build_world(0).tasks(6, seed=0)
    assert all(task.benchmark == "fictional" for task in tasks)
    assert score(tasks[0], tasks[0].gold[0].upper()) == {"em": 1.0, "f1": 1.0}
    assert score(tasks[0], "nowhere") == {"em": 0.0, "f1": 0.0}
    assert [task.split for task in load_tasks("fictional", split="test", limit=3)] == ["test"] * 3


@pytest.mark.shared_data
def test_invented_answers_are_rarely_real_words(world, shared_data):
    """Made-up syllables now and then make a real word ('Lumo'); the facts stay invented, but few may."""
    path = shared_data / "corpus" / "wiki_passages.jsonl.gz"
    answers = {task.gold[0] for task in world.tasks()}
    words = sorted({word for answer in answers for word in answer.lower().split()})
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        in_wiki = set(re.findall(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", handle.read().lower()))
    found = sorted(answer for answer in answers if set(answer.lower().split()) <= in_wiki)
    assert len(found) <= 0.05 * len(answers), f"invented answers whose words all appear in Wikipedia text: {found}"
