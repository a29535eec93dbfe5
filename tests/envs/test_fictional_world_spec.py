"""Worlds as data: look-alike shapes in the default spec, and random specs the code has never seen."""

import dataclasses
import re
import time

import bm25s
import pytest

from memento.envs.fictional_world import DEFAULT_SPEC, SHAPES, build_world, load_fictional, random_spec
from memento.envs.world_spec import Relation, Shape, WorldSpec
from memento.errors import ValidationError

SPEC_SEEDS = range(8)
FILLER = {"in", "which", "was", "the", "of", "who", "is", "or", "what", "a"}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def default_words() -> set[str]:
    """Every word the default spec writes: its question templates, sentences and openings, less filler."""
    texts = [shape.template for shape in DEFAULT_SPEC.shapes]
    texts += [t for relation in DEFAULT_SPEC.relations for t in relation.templates]
    texts += [t for kind in DEFAULT_SPEC.kinds for t in (*kind.passages, *kind.distractors)]
    return set().union(*(words(re.sub(r"{\w*}", " ", text)) for text in texts)) - FILLER


@pytest.fixture(scope="module")
def world():
    return build_world(seed=0)


def test_default_size_has_enough_train_and_test_questions_and_builds_fast():
    started = time.perf_counter()
    world = build_world(seed=0)
    assert time.perf_counter() - started < 1.0
    train, test = world.tasks(split="train"), world.tasks(split="test")
    assert len(train) >= 60 and len(test) >= 40
    assert {task.metadata["shape"] for task in test} == set(SHAPES)


def test_look_alikes_read_alike_but_follow_other_paths(world):
    pairs = {(shape.name, other) for shape in DEFAULT_SPEC.shapes for other in shape.looks_like}
    assert {("founder_birthplace", "ceo_birthplace"), ("ceo_birth_country", "founder_birth_country"),
            ("inventor_birthplace", "inventor_spouse"), ("inventor_birthplace", "spouse_birthplace")} <= pairs
    for name, other in pairs:
        one, two = DEFAULT_SPEC.shape(name), DEFAULT_SPEC.shape(other)
        assert one.path != two.path
        assert len(words(one.template) & words(two.template)) / len(words(one.template) | words(two.template)) > 0.25
        assert (other, name) in pairs  # declared both ways


def test_a_look_alike_of_a_training_question_is_held_out_about_the_same_company(world):
    def split_of(shape):
        return {task.metadata["hops"][0]["subject"]: task.split for task in world.tasks(shapes=[shape])}

    founder, ceo = split_of("founder_birthplace"), split_of("ceo_birthplace")
    assert any(founder[company] == "train" and ceo[company] == "test" for company in founder)
    assert any(founder[company] == "test" and ceo[company] == "train" for company in founder)
    answers = {shape: {t.metadata["hops"][0]["subject"]: t.gold[0] for t in world.tasks(shapes=[shape])}
               for shape in ("founder_birthplace", "ceo_birthplace")}
    differing = sum(answers["founder_birthplace"][c] != answers["ceo_birthplace"][c] for c in founder)
    assert differing >= 0.8 * len(founder)  # a founder's procedure answers a CEO question wrongly


def test_random_specs_are_deterministic_and_differ_by_seed():
    assert random_spec(3) == random_spec(3)
    assert build_world(1, spec=random_spec(3)).passages == build_world(1, spec=random_spec(3)).passages
    assert len({tuple(shape.template for shape in random_spec(seed).shapes) for seed in SPEC_SEEDS}) == len(SPEC_SEEDS)


@pytest.mark.parametrize("spec_seed", SPEC_SEEDS)
def test_random_worlds_ask_answerable_questions_in_wording_the_default_never_uses(spec_seed):
    spec = random_spec(spec_seed)
    world = build_world(seed=spec_seed, spec=spec)
    passages = {passage["id"]: passage for passage in world.passages}
    assert {relation.name for relation in spec.relations}.isdisjoint(r.name for r in DEFAULT_SPEC.relations)
    assert {kind.name for kind in spec.kinds}.isdisjoint(kind.name for kind in DEFAULT_SPEC.kinds)
    tasks = world.tasks()
    for shape in spec.shapes:
        of_shape = [task for task in tasks if task.metadata["shape"] == shape.name]
        assert len(of_shape) >= 10, shape
        assert words(shape.template).isdisjoint(default_words()), shape.template
        assert 1 <= len(shape.path) <= 3
    assert {len(shape.path) for shape in spec.shapes} == {1, 2, 3}
    for task in tasks:
        hops = task.metadata["hops"]
        assert task.gold == [hops[-1]["object"]] and task.metadata["spec"] == spec.name
        assert all(later["subject"] == earlier["object"] for earlier, later in zip(hops, hops[1:]))
        assert hops[0]["subject"] in task.question and task.gold[0] not in task.question
        for hop in hops:
            passage = passages[hop["passage_id"]]
            assert passage["title"] == hop["subject"]
            assert hop["subject"] in passage["text"] and hop["object"] in passage["text"]
    train, test = world.tasks(split="train"), world.tasks(split="test")
    assert train and test and {t.id for t in train}.isdisjoint(t.id for t in test)


@pytest.mark.parametrize("spec_seed", [None, *SPEC_SEEDS[:4]])
def test_only_the_cited_passage_about_a_subject_names_the_hop_object(spec_seed):
    """Distractors about the subject never name its related entities, so one passage answers each hop."""
    world = build_world(seed=1, spec=DEFAULT_SPEC if spec_seed is None else random_spec(spec_seed))
    about = {}
    for passage in world.passages:
        about.setdefault(passage["title"], []).append(passage)
    for task in world.tasks():
        for hop in task.metadata["hops"]:
            naming = [p["id"] for p in about[hop["subject"]] if re.search(rf"\b{re.escape(hop['object'])}\b", p["text"])]
            assert naming == [hop["passage_id"]], hop


@pytest.mark.parametrize("spec_seed", SPEC_SEEDS)
def test_random_specs_hold_a_look_alike_pair(spec_seed):
    spec = random_spec(spec_seed)
    pairs = [(shape, spec.shape(other)) for shape in spec.shapes for other in shape.looks_like]
    assert pairs
    world = build_world(seed=0, spec=spec)
    for one, two in pairs:
        assert one.path != two.path and len(one.path) == len(two.path)
        assert spec.anchor_kind(one) == spec.anchor_kind(two)
        assert len(words(one.template) ^ words(two.template)) == 2  # one role noun swapped for another
        answers = [{t.metadata["hops"][0]["subject"]: t.gold[0] for t in world.tasks(shapes=[shape.name])}
                   for shape in (one, two)]
        common = set(answers[0]) & set(answers[1])
        assert sum(answers[0][anchor] != answers[1][anchor] for anchor in common) >= 0.7 * len(common) > 0


@pytest.mark.parametrize("spec_seed", SPEC_SEEDS[:3])
def test_bm25_finds_the_first_hop_of_a_random_world_question(spec_seed):
    world = build_world(seed=0, spec=random_spec(spec_seed))
    retriever = bm25s.BM25()
    corpus = [p["title"] + " " + p["text"] for p in world.passages]
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    tasks = world.tasks()
    queries = bm25s.tokenize([task.question for task in tasks], stopwords="en", show_progress=False)
    ids, _ = retriever.retrieve(queries, k=5, show_progress=False)
    found = [task.metadata["hops"][0]["passage_id"] in {world.passages[i]["id"] for i in row}
             for task, row in zip(tasks, ids)]
    assert sum(found) >= 0.95 * len(tasks)


def test_load_fictional_with_a_spec_seed_gives_an_unseen_world():
    tasks = load_fictional(limit=6, seed=0, world_seed=2, spec_seed=5)
    shapes = {shape.name for shape in random_spec(5).shapes}
    assert len(tasks) == 6 and {task.metadata["shape"] for task in tasks} <= shapes
    assert shapes.isdisjoint(SHAPES)
    assert tasks == build_world(2, spec=random_spec(5)).tasks(6, seed=0)
    assert all(task.id.startswith("fictional-random-5-2-") for task in tasks)
    with pytest.raises(ValidationError, match="shapes"):
        load_fictional(spec_seed=5, shapes=["founder_birthplace"])


def test_inconsistent_specs_are_refused_with_the_reason():
    def changed(**fields):
        return dataclasses.replace(DEFAULT_SPEC, **fields)

    wrong_path = Shape("lost", "Where is {0}?", ("founded_by", "located_in"))
    with pytest.raises(ValidationError, match="does not follow"):
        changed(shapes=(wrong_path,))
    with pytest.raises(ValidationError, match="must use exactly"):
        changed(shapes=(Shape("two", "Is {0} older than {1}?", ("founded_by",)),))
    with pytest.raises(ValidationError, match="year attribute"):
        changed(shapes=(Shape("which", "Which of {0} or {1}?", ("founded_by",), compare="earliest"),))
    typo = Relation("ceo", "company", "person", ("Its CEO is {objct}.",), passage=1)
    with pytest.raises(ValidationError, match="objct"):
        changed(relations=(*DEFAULT_SPEC.relations[:-2], typo, DEFAULT_SPEC.relations[-1]))
    with pytest.raises(ValidationError, match="unknown kinds"):
        changed(relations=(*DEFAULT_SPEC.relations, Relation("moored_at", "ship", "city", ("{subject} {object}",))))
    silent = Relation("ceo", "company", "person", ("It has a chief executive.",), passage=1)
    with pytest.raises(ValidationError, match="does not state its"):
        changed(relations=(*DEFAULT_SPEC.relations[:-2], silent, DEFAULT_SPEC.relations[-1]))
    nameless = Relation("headquartered_in", "company", "city", ("Its offices are in {object}.",), passage=1)
    with pytest.raises(ValidationError, match="may not name its subject"):
        changed(relations=(*DEFAULT_SPEC.relations[:5], nameless, *DEFAULT_SPEC.relations[6:]))
    sometimes = Relation("founded_by", "company", "person", DEFAULT_SPEC.relations[4].templates, coverage=0.5)
    with pytest.raises(ValidationError, match="that every company has"):
        changed(relations=(*DEFAULT_SPEC.relations[:4], sometimes, *DEFAULT_SPEC.relations[5:]))
    with pytest.raises(ValidationError, match="n_entities"):
        build_world(n_entities=39, spec=random_spec(0))
    crowded = changed(kinds=tuple(dataclasses.replace(kind, share=0.3) if kind.name in ("company", "invention") else kind
                                  for kind in DEFAULT_SPEC.kinds))
    with pytest.raises(ValidationError, match="ran out of distinct 'person'"):
        build_world(n_entities=120, spec=crowded)
    assert isinstance(DEFAULT_SPEC, WorldSpec)
