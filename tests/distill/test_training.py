"""Real SmolLM2, real peft, on the CPU: a tiny adapter learns its cases; one trained to forget is rejected."""

import random

import pytest

from memento.case import Case
from memento.distill import TrainConfig
from memento.distill.gate import GateRule, run_gate
from memento.distill.general_text import GENERAL_QA, PROBE_PASSAGES, REPLAY_PASSAGES
from memento.distill.probe import adapter_off, probe, reply_logprobs
from memento.distill.selection import Example, SelectionConfig, case_example, select_examples
from memento.distill.train import lora_model, train_adapter

from .conftest import FACTS

pytestmark = pytest.mark.slow

TINY = {"r": 8, "alpha": 16, "dropout": 0.0, "batch_size": 2, "max_length": 64, "device": "cpu", "replay_ratio": 0.0,
        "kl_weight": 0.0}
LEARNED_LOGPROB = -0.05
"""Mean log-probability per reply token above which a short reply is learned (see the first test)."""


def test_a_tiny_adapter_answers_its_cases_better(smol):
    base, tokenizer = smol
    # Two facts, no plan: short replies ("Answer: Amel Trosk"), so a greedy reply costs a few forward passes.
    examples = [case_example(Case(task=q, answer=a, reward=1.0)) for q, a in FACTS[:2]]
    config = TrainConfig(steps=8, lr=5e-3, **TINY)
    model = lora_model(base, config)
    with adapter_off(model):
        before = probe(model, tokenizer, heldout=examples, max_new_tokens=8)
    # Train in rounds until each reply is learned: a mean log-probability above -0.05 per token over
    # its ~7 tokens puts every token above probability 1/2 (their sum is above -ln 2), so greedy
    # decoding must reproduce it. How many steps that takes varies with a machine's float kernels;
    # a model that does not get there within the budget fails here, named.
    for rounds in range(1, 5):
        result = train_adapter(model, tokenizer, examples, config, progress=False)
        learned = reply_logprobs(model, tokenizer, examples)
        if min(learned) > LEARNED_LOGPROB:
            break
    assert min(learned) > LEARNED_LOGPROB, f"reply log-probabilities {learned} after {rounds * config.steps} steps"
    assert result.seconds_per_step > 0
    after = probe(model, tokenizer, heldout=examples, max_new_tokens=8)
    assert before["heldout_em"].mean == 0.0  # the base does not know made-up facts
    assert after["heldout_em"].mean == 100.0, f"greedy answers after training: EM {after['heldout_em'].values}"
    assert after["heldout_logprob"].mean > before["heldout_logprob"].mean + 1.0  # nats per token
    # Check (b)'s hook, wired with a scorer that stands in for the eval runner (the evals side's real one
    # runs the agent): each task's reward is whether the model's greedy answer is the fact.
    answered = []

    def fact_tasks(model, tokenizer):
        answered.append(not next(m for m in model.modules() if hasattr(m, "lora_A")).disable_adapters)
        return [g / 100 for g in probe(model, tokenizer, heldout=examples, max_new_tokens=8)["heldout_em"].values]

    report = run_gate(model, tokenizer, heldout=examples, general_text=PROBE_PASSAGES[:2], general_qa=(),
                      generate=False, memory_tasks=fact_tasks, rule=GateRule(max_drop_points=100.0, ci_check=False))
    tasks = next(c for c in report["checks"] if c["metric"] == "memory_tasks_reward")
    assert answered == [False, True] and report["eval_tasks"]["status"] == "run"
    assert (tasks["reference"], tasks["candidate"], tasks["passed"]) == (0.0, 100.0, True)


def test_the_gate_rejects_an_adapter_trained_to_forget(smol):
    base, tokenizer = smol
    rng = random.Random(0)
    garbage = [Example(case_id=f"g{i}", messages=(("user", "Say something."),), answer="",
                       completion=" ".join("".join(rng.choices("qxzjvkw", k=5)) for _ in range(8))) for i in range(2)]
    config = TrainConfig(steps=4, lr=5e-2, **TINY)
    model = lora_model(base, config)
    train_adapter(model, tokenizer, garbage, config, progress=False)
    report = run_gate(model, tokenizer, heldout=garbage, general_text=PROBE_PASSAGES[:6], general_qa=GENERAL_QA[:6],
                      rule=GateRule(), generate=False)
    assert not report["passed"]
    assert "general_ppl" in report["failed"]
    ppl = next(c for c in report["checks"] if c["metric"] == "general_ppl")
    assert ppl["drop_points"] > 2.0 and "more than 2.0" in ppl["why"]


def test_an_adapter_trained_on_its_own_cases_passes_the_gate_on_them(smol):
    """The gate's other side: a harmless adapter (tiny lr) is not rejected for the general probe."""
    base, tokenizer = smol
    examples = [case_example(Case(task=q, answer=a, reward=1.0)) for q, a in FACTS[:2]]
    config = TrainConfig(steps=2, lr=1e-4, **TINY)
    model = lora_model(base, config)
    train_adapter(model, tokenizer, examples, config, progress=False)
    report = run_gate(model, tokenizer, heldout=examples, general_text=PROBE_PASSAGES[:6], general_qa=GENERAL_QA[:6],
                      rule=GateRule(ci_check=False), generate=False)
    assert "general_ppl" not in report["failed"], report["checks"]


def test_a_resumed_run_ends_where_an_unbroken_one_does(fact_bank, smol, tmp_path):
    base, tokenizer = smol
    examples = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, context="none")).train[:3]
    options = {**TINY, "batch_size": 2, "replay_ratio": 0.5, "kl_weight": 0.5, "interpolation": 0.5, "max_length": 48}
    straight = lora_model(base, TrainConfig(steps=4, lr=3e-3, **options))
    train_adapter(straight, tokenizer, examples, TrainConfig(steps=4, lr=3e-3, **options),
                  replay_texts=REPLAY_PASSAGES, progress=False)
    a = reply_logprobs(straight, tokenizer, examples)
    straight.unload()  # the same base serves the broken and the resumed run, each from a fresh adapter
    checkpoint = tmp_path / "run.pt"
    broken = lora_model(base, TrainConfig(steps=2, lr=3e-3, **options))
    train_adapter(broken, tokenizer, examples, TrainConfig(steps=2, lr=3e-3, **options), replay_texts=REPLAY_PASSAGES,
                  checkpoint=checkpoint, fingerprint="data-1", progress=False)
    broken.unload()
    resumed = lora_model(base, TrainConfig(steps=4, lr=3e-3, **options))
    result = train_adapter(resumed, tokenizer, examples, TrainConfig(steps=4, lr=3e-3, **options),
                           replay_texts=REPLAY_PASSAGES, checkpoint=checkpoint, fingerprint="data-1", progress=False)
    assert result.resumed_from == 2 and len(result.losses) == 4
    b = reply_logprobs(resumed, tokenizer, examples)
    assert a == pytest.approx(b, abs=1e-4)
    with pytest.raises(Exception, match="another config or other data"):
        train_adapter(resumed, tokenizer, examples, TrainConfig(steps=4, lr=3e-3, **options),
                      replay_texts=REPLAY_PASSAGES, checkpoint=checkpoint, fingerprint="data-2", progress=False)


def test_the_gate_checks_the_eval_tasks_with_memory_on_with_the_adapter_off_then_on(smol):
    """Check (b): the callable is a named fake of an eval (its rewards scripted); the gate's part is real."""
    base, tokenizer = smol
    model = lora_model(base, TrainConfig(steps=1, **TINY))
    seen = []

    def scripted_memory_tasks(model, tokenizer):
        # peft's disable_adapter() context sets this flag on each LoRA layer: it tells which call is which.
        seen.append(next(m for m in model.modules() if hasattr(m, "lora_A")).disable_adapters)
        return [1.0, 1.0, 1.0, 0.0] if len(seen) == 1 else [0.0, 0.0, 1.0, 0.0]

    report = run_gate(model, tokenizer, heldout=[], general_text=PROBE_PASSAGES[:2], general_qa=[], generate=False,
                      rule=GateRule(), memory_tasks=scripted_memory_tasks)
    assert seen == [True, False], "memory alone first (adapter off), then adapter + memory"
    assert report["eval_tasks"] == {"status": "run", "tasks": 4, "memory_alone": 75.0, "adapter_and_memory": 25.0,
                                    "adapter_beats_memory_alone": False}
    check = next(c for c in report["checks"] if c["metric"] == "memory_tasks_reward")
    assert check["check"] == "(b) eval tasks with memory on" and not check["passed"] and check["drop_points"] == 50.0
    assert "memory_tasks_reward" in report["failed"] and not report["passed"]


def test_a_held_out_reply_may_run_as_long_as_its_gold_completion(smol):
    """A completion holds the plan before the answer: a fixed 16 new tokens cut every reply before it (CI saw EM 0)."""
    from memento.distill.probe import REPLY_MARGIN, reply_budget

    _, tokenizer = smol
    long = case_example(Case(task=FACTS[0][0], answer=FACTS[0][1], reward=1.0,
                             plan=["search the question", "open the first result", "read the answer"]))
    tokens = len(tokenizer(long.completion, add_special_tokens=False)["input_ids"])
    assert tokens > 16 and reply_budget(tokenizer, [long]) == tokens + REPLY_MARGIN
