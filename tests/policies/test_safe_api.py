"""The API traps of issue 12, item 4: each one a call that used to fail or mislead, and what it does now."""

import pytest

from memento.errors import ValidationError
from policies import POLICIES, make_policy

ALL = sorted(POLICIES)


@pytest.mark.parametrize("name", ALL)
def test_k_cannot_be_passed_by_position(env, name):
    """`select(state, 4)` once bound 4 to the bank (AttributeError: 'int' object has no attribute 'path')."""
    policy = make_policy(name, env.bank)
    state = env.state(env.train_tasks[0])
    with pytest.raises(TypeError, match="positional"):
        policy.select(state, 4)
    with pytest.raises(TypeError, match="positional"):
        policy.select(state, env.bank)
    assert len(policy.select(state, k=3)) == 3


@pytest.mark.parametrize("name", ALL)
def test_excluded_cases_are_never_returned_and_others_fill_their_place(env, name):
    policy = make_policy(name, env.bank)
    state = env.state(env.train_tasks[0])
    best = [s.case.id for s in policy.select(state, k=env.bank.count())]
    blocked = set(best[:6])
    for explore in (False, True):
        by_ids = policy.select(state, k=4, explore=explore, exclude=blocked)
        by_predicate = policy.select(state, k=4, explore=explore, exclude=lambda case: case.id in blocked)
        for chosen in (by_ids, by_predicate):
            assert len(chosen) == 4 and not blocked & {s.case.id for s in chosen}
    everything = policy.select(state, k=4, exclude=set(best))
    assert everything == []


def test_exclude_takes_ids_not_one_string(env):
    policy = make_policy("similarity", env.bank)
    with pytest.raises(ValidationError, match=r"one string; pass a collection of case ids"):
        policy.select(env.state(env.train_tasks[0]), exclude="some-case-id")
