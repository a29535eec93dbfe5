"""Real SmolLM2, real peft, on the CPU: a tiny adapter learns its cases; one trained to forget is rejected."""

import random

import pytest

from memento.distill import SelectionConfig, TrainConfig, select_examples
from memento.distill.gate import GateRule, run_gate
from memento.distill.general_text import GENERAL_QA, PROBE_PASSAGES, REPLAY_PASSAGES
from memento.distill.probe import adapter_off, probe, reply_logprobs
from memento.distill.selection import Example
from memento.distill.train import lora_model, train_adapter

pytestmark = pytest.mark.slow

TINY = {"r": 8, "alpha": 16, "dropout": 0.0, "batch_size": 4, "max_length": 96, "device": "cpu", "replay_ratio": 0.0,
        "kl_weight": 0.0}


def test_a_tiny_adapter_answers_its_cases_better(fact_bank, smol):
    base, tokenizer = smol
    examples = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, context="none")).train[:4]
    model = lora_model(base, TrainConfig(steps=12, lr=3e-3, **TINY))
    with adapter_off(model):
        before = probe(model, tokenizer, heldout=examples)
    result = train_adapter(model, tokenizer, examples, TrainConfig(steps=12, lr=3e-3, **TINY), progress=False)
    after = probe(model, tokenizer, heldout=examples)
    assert after["heldout_logprob"].mean > before["heldout_logprob"].mean + 1.0  # nats per token
    assert after["heldout_em"].mean >= 75.0 > before["heldout_em"].mean, "the greedy replies now hold the facts"
    assert result.losses[-1]["losses/task"] < result.losses[0]["losses/task"] and result.seconds_per_step > 0


def test_the_gate_rejects_an_adapter_trained_to_forget(smol):
    base, tokenizer = smol
    rng = random.Random(0)
    garbage = [Example(case_id=f"g{i}", messages=(("user", "Say something."),), answer="",
                       completion=" ".join("".join(rng.choices("qxzjvkw", k=5)) for _ in range(12))) for i in range(4)]
    config = TrainConfig(steps=6, lr=5e-2, **TINY)
    model = lora_model(base, config)
    train_adapter(model, tokenizer, garbage, config, progress=False)
    report = run_gate(model, tokenizer, heldout=garbage[:2], general_text=PROBE_PASSAGES[:8], general_qa=GENERAL_QA[:8],
                      rule=GateRule())
    assert not report["passed"]
    assert "general_ppl" in report["failed"]
    ppl = next(c for c in report["checks"] if c["metric"] == "general_ppl")
    assert ppl["drop_points"] > 2.0 and "more than 2.0" in ppl["why"]


def test_a_resumed_run_ends_where_an_unbroken_one_does(fact_bank, smol, tmp_path):
    from memento.distill.model import load_base

    base, tokenizer = smol
    examples = select_examples(fact_bank, SelectionConfig(heldout_fraction=0.0, context="none")).train[:3]
    options = {**TINY, "batch_size": 2, "replay_ratio": 0.5, "kl_weight": 0.5, "interpolation": 0.5, "max_length": 48}
    straight = lora_model(base, TrainConfig(steps=4, lr=3e-3, **options))
    train_adapter(straight, tokenizer, examples, TrainConfig(steps=4, lr=3e-3, **options),
                  replay_texts=REPLAY_PASSAGES, progress=False)
    checkpoint = tmp_path / "run.pt"
    broken = lora_model(load_base(device="cpu")[0], TrainConfig(steps=2, lr=3e-3, **options))
    train_adapter(broken, tokenizer, examples, TrainConfig(steps=2, lr=3e-3, **options), replay_texts=REPLAY_PASSAGES,
                  checkpoint=checkpoint, fingerprint="data-1", progress=False)
    resumed = lora_model(load_base(device="cpu")[0], TrainConfig(steps=4, lr=3e-3, **options))
    result = train_adapter(resumed, tokenizer, examples, TrainConfig(steps=4, lr=3e-3, **options),
                           replay_texts=REPLAY_PASSAGES, checkpoint=checkpoint, fingerprint="data-1", progress=False)
    assert result.resumed_from == 2 and len(result.losses) == 4
    a = reply_logprobs(straight, tokenizer, examples)
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
