"""Procedural memory on real search: induction from the agent's own results, reuse on new tasks, look-alikes refused.

A world from `envs.fictional_world` is searched with the real BM25 tool. Induction must give a
procedure with variables and none of its source task's values; the procedure must answer other
tasks of the same shape and fit no look-alike; and all of it must hold on worlds whose relations
and question shapes the code has never seen (`envs.random_world.random_spec`).
"""

from __future__ import annotations

import collections

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memento.envs.fictional_world import build_world
from memento.envs.metrics import em_f1
from memento.envs.random_world import random_spec
from memento import CaseBank
from memento.agent import Agent, AgentConfig
from memento.agent.explore import search_outward
from memento.agent.induction import induce
from memento.agent.recall import run_procedure
from memento.case import Case
from memento.tools.search import CorpusSearch, search_tool
from memento.policies.similarity import SimilarityPolicy
from tests.fakes import FakeHashEmbedder

CONFIG = AgentConfig(fallback="explore")


def searchable(world, folder):
    corpus = world.write_corpus_jsonl(folder / "corpus.jsonl")
    return search_tool(CorpusSearch(corpus, cache_dir=folder / "cache"))


@pytest.fixture(scope="module")
def world_and_tool(tmp_path_factory):
    world = build_world(0, 200)
    return world, searchable(world, tmp_path_factory.mktemp("world"))


def by_shape(tasks):
    shapes = collections.defaultdict(list)
    for task in tasks:
        shapes[task.metadata["shape"]].append(task)
    return shapes


def learn_from_one(tasks, tool, tries=4):
    """Hindsight on the first tasks of a shape until one gives a procedure: (procedure, source task) or (None, None)."""
    for task in tasks[:tries]:
        evidence = []
        search_outward(task.question, tool, CONFIG, evidence)
        procedure, _ = induce(task.question, evidence, task.gold, learned_from="hindsight")
        if procedure is not None:
            return procedure, task
    return None, None


def values_of(task) -> set[str]:
    """Every entity and value of a task's facts: what must not stay in a procedure."""
    return {value for hop in task.metadata["hops"] for value in (hop["subject"], hop["object"])} | set(task.gold)


def test_induction_gives_a_procedure_with_variables_and_no_leftover_values(world_and_tool):
    world, tool = world_and_tool
    learned = 0
    for shape, tasks in by_shape(world.tasks(None, seed=0, split="train")).items():
        procedure, source = learn_from_one(tasks, tool)
        if procedure is None:
            continue
        learned += 1
        text = procedure.model_dump_json()
        assert procedure.slots and all("{" + slot + "}" in procedure.template for slot in procedure.slots)
        assert [hop.binds for hop in procedure.hops][-1] == procedure.answer
        assert not [value for value in values_of(source) if value in text], (shape, text)
        assert procedure.fit(source.question) is not None
    assert learned >= 6, "hindsight found a procedure for most shapes"


def test_a_look_alike_task_does_not_fit_and_the_agent_explores_instead(world_and_tool, tmp_path, smollm2):
    world, tool = world_and_tool
    shapes = by_shape(world.tasks(None, seed=0, split="train"))
    procedure, source = learn_from_one(shapes["founder_birthplace"], tool)
    assert procedure is not None
    company = source.metadata["hops"][0]["subject"]
    look_alike = f"In which city was the CEO of {company} born?"
    assert procedure.fit(look_alike) is None
    with CaseBank(tmp_path / "bank.db", embedder=FakeHashEmbedder()) as bank:
        bank.add(Case(task=source.question, answer=source.gold[0], reward=1.0, procedure=procedure))
        agent = Agent(smollm2, bank, SimilarityPolicy(bank), [tool], config=CONFIG)
        look = agent.run(look_alike, learn=False)
        assert look.selected, "the founder case was shown"
        assert look.trace["trajectory"][0]["thought"].startswith("explore"), "no recall on a look-alike"
        same = agent.run(shapes["founder_birthplace"][-1], learn=False)
        assert same.trace["trajectory"][0]["thought"].startswith("recall")
        assert bank.count() == 1, "learn=False writes nothing: no case, no hindsight"

        training = shapes["hq_country"][0]
        learned = agent.run(training, learn=True)
        case = bank.get(learned.case_id)
        assert case.metadata["answered_by"] == "explore" and case.procedure is not None
        assert case.procedure.learned_from == ("answer" if learned.reward else "hindsight")
        assert case.metadata["hindsight"]["reached"] is True
        assert case.procedure.fit(shapes["hq_country"][1].question) is not None
        agent.close()


@pytest.mark.slow
def test_a_procedure_from_one_task_answers_other_tasks_of_its_shape(world_and_tool, smollm2):
    world, tool = world_and_tool
    train, test = (by_shape(world.tasks(None, seed=0, split=split)) for split in ("train", "test"))
    procedure, _ = learn_from_one(train["founder_birthplace"], tool)
    right = []
    for task in test["founder_birthplace"] + train["founder_birthplace"][-4:]:
        values = procedure.fit(task.question)
        assert values is not None
        run = run_procedure(procedure, values, task.question, {"search": tool}, smollm2, CONFIG, [], [])
        right.append(em_f1(run.answer, task.gold)["em"])
    assert sum(right) / len(right) >= 0.6, right


@pytest.mark.slow
@pytest.mark.parametrize("spec_seed", [11, 12, 13])
def test_induction_is_generic_on_worlds_the_code_has_never_seen(spec_seed, tmp_path, smollm2):
    spec = random_spec(spec_seed)
    world = build_world(spec_seed, 200, spec)
    tool = searchable(world, tmp_path)
    train, test = (by_shape(world.tasks(None, seed=0, split=split)) for split in ("train", "test"))
    reused, right = 0, 0
    for shape in spec.shapes:
        procedure, source = learn_from_one(train[shape.name], tool)
        if procedure is None:
            continue
        assert not [value for value in values_of(source) if value in procedure.model_dump_json()]
        for task in test[shape.name][:4]:
            values = procedure.fit(task.question)
            assert values is not None, (procedure.template, task.question)
            run = run_procedure(procedure, values, task.question, {"search": tool}, smollm2, CONFIG, [], [])
            reused += 1
            right += em_f1(run.answer, task.gold)["em"]
    assert reused >= 8, "procedures were learned for most unseen shapes"
    assert right / reused >= 0.5, f"{right}/{reused} test tasks answered by procedures learned on an unseen world"


def test_slots_are_numbered_in_reading_order_and_a_bad_path_gives_no_procedure():
    # A HotpotQA question whose induction once crashed an eval: its slot values came out of order.
    task = ("What country does Washington Dulles International Airport and Baltimore–Washington "
            "metropolitan area have in common?")
    passage = {"id": "p1", "title": "Dulles", "text": "The Baltimore–Washington metropolitan area and Washington "
               "Dulles International Airport both lie in the United States of America."}
    evidence = [{"n": 0, "tool": "search", "query": task, "depth": 0, "parent": None, "passages": [passage]}]
    procedure, found = induce(task, evidence, ["United States"], learned_from="hindsight")
    assert procedure is not None and found["reached"]
    assert procedure.fit(task) == {"t0": "Washington Dulles International Airport", "t1": "Baltimore", "t2": "Washington"}
    positions = [procedure.template.index("{" + slot + "}") for slot in procedure.slots]
    assert positions == sorted(positions)


def test_a_number_slot_never_lands_inside_another_slot():
    task = "Which team did Kala Rovers beat 3 times in 1 season?"
    passage = {"id": "p1", "title": "Kala Rovers", "text": "Kala Rovers beat Varno United 3 times in 1 season."}
    evidence = [{"n": 0, "tool": "search", "query": task, "depth": 0, "parent": None, "passages": [passage]}]
    procedure, _ = induce(task, evidence, ["Varno United"], learned_from="hindsight")
    assert procedure is not None
    assert procedure.fit(task) == {"t0": "Kala Rovers", "t1": "3", "t2": "1"}


words = st.sampled_from(["Kala", "Rovers", "of", "the", "1", "3", "1950", "Washington", "Dulles", "–", "'s", "and",
                         "in", "City", "born", "founded", "by", "Zubia", "Lake", "?", ".", ",", "de", "The", "X"])


@settings(max_examples=300, deadline=None)
@example(task="Kala de The Kala", text="The Kala", answer="Kala")  # a part 'The Kala' no slot accepts back
@example(task="Kala The", text="Kala The", answer="Kala")
@given(task=st.lists(words, min_size=1, max_size=14).map(" ".join),
       text=st.lists(words, min_size=1, max_size=24).map(" ".join), answer=st.lists(words, min_size=1, max_size=3).map(" ".join))
def test_induction_never_raises_and_what_it_gives_fits_its_task(task, text, answer):
    evidence = [{"n": 0, "tool": "search", "query": task, "depth": 0, "parent": None,
                 "passages": [{"id": "p", "title": "t", "text": text}]}]
    procedure, found = induce(task, evidence, [answer], learned_from="hindsight")
    assert isinstance(found, dict)
    if procedure is not None:
        assert procedure.fit(task) is not None
