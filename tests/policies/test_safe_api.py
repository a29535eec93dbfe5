"""The API traps of issue 12, item 4: each one a call that used to fail or mislead, and what it does now."""

import inspect
from dataclasses import fields

import pytest

from memento import CaseBank
from memento.errors import PolicyError, ValidationError
from memento.policies import POLICIES, load_policy, make_policy

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


def test_every_config_field_can_be_set_by_keyword_next_to_the_preset(env):
    """`make_policy("neural", bank=..., name="n2")` raised TypeError: the preset's parameter was called `name`."""
    policy = make_policy("neural", bank=env.bank, name="n2", alpha=0.2)
    assert (policy.config.name, policy.config.alpha, policy.config.credit) == ("n2", 0.2, "set")
    assert make_policy("episodic", env.bank, name="e2").config.name == "e2"
    for cls, _ in POLICIES.values():
        clashing = {f.name for f in fields(cls.config_class)} & set(inspect.signature(make_policy).parameters)
        assert not clashing, f"{cls.config_class.__name__} fields {clashing} clash with make_policy's own parameters"


@pytest.mark.parametrize("name", ["neural", "episodic"])
def test_two_live_policies_with_one_name_on_one_bank_is_an_error_unless_shared(env, tmp_path, name):
    """Two default-named neural policies on one bank silently shared one replay buffer."""
    first = make_policy(name, env.bank)
    with pytest.raises(PolicyError, match=rf"named '{name}' is already learning on bank .*share one replay buffer.*"
                                          rf"name='...'.*policy.close\(\).*share=True"):
        make_policy(name, env.bank)
    with pytest.raises(PolicyError, match="already learning"):
        first.save(tmp_path / "policy.pt")
        load_policy(tmp_path / "policy.pt", env.bank)
    with CaseBank(env.bank.path, embedder=env.bank.embedder) as same_file:
        with pytest.raises(PolicyError, match="already learning"):
            make_policy(name, same_file)
    assert make_policy(name, env.bank, name="other").config.name == "other"
    shared = make_policy(name, env.bank, share=True)
    assert shared.config.name == first.config.name
    first.close()
    assert make_policy(name, env.bank).config.name == name, "closing a policy frees its name"


def test_policies_that_keep_nothing_in_the_bank_never_clash(env):
    assert make_policy("similarity", env.bank) is not make_policy("similarity", env.bank)


def test_k_has_one_owner_the_caller(env, tmp_path):
    """k was defined in six config classes, and the agent ignored the policy's own."""
    from memento.policy import DEFAULT_K, PolicyConfig
    from memento.policies.no_memory import NoMemoryConfig
    from memento.policies.random_candidates import RandomCandidatesConfig

    configs = [cls.config_class for cls, _ in POLICIES.values()] + [NoMemoryConfig, RandomCandidatesConfig]
    for config in configs:
        assert issubclass(config, PolicyConfig) and "k" not in {f.name for f in fields(config)}, config.__name__
    with pytest.raises(ValidationError, match=r"k is not a setting of policy 'neural': the caller owns it.*AgentConfig.k"):
        make_policy("neural", env.bank, k=8)
    state = env.state(env.train_tasks[0])
    assert len(make_policy("neural", env.bank).select(state)) == DEFAULT_K


def test_a_checkpoint_that_saved_k_in_its_config_still_loads(env, tmp_path):
    import torch

    policy = make_policy("episodic", env.bank)
    path = policy.save(tmp_path / "old.pt")
    policy.close()
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["config"]["k"] = 4  # as written before k left the policy's config
    torch.save(checkpoint, path)
    assert load_policy(path, env.bank).config == policy.config


@pytest.mark.parametrize("name", ALL)
def test_explore_must_be_a_bool(env, name):
    """`explore="no"` is truthy: it was taken as True, so an evaluation explored (and learned from noise)."""
    policy = make_policy(name, env.bank)
    state = env.state(env.train_tasks[0])
    for bad in ("no", "yes", 1, None):
        with pytest.raises(ValidationError, match=r"explore=.* must be True \(while learning\) or False"):
            policy.select(state, k=2, explore=bad)
    assert len(policy.select(state, k=2, explore=False)) == 2
