"""With distillation on, each memory arm of an eval runs an LLM that follows its own bank's promoted adapter."""

import pytest

from memento.distill import AdapterRegistry
from memento.evals.config import NO_MEMORY, DistillSpec, EvalConfig
from memento.evals.runner import arm_llms, build_llm, open_arm

pytestmark = pytest.mark.slow  # loads SmolLM2 twice and converts an adapter for llama.cpp

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_each_memory_arm_follows_its_banks_adapter_and_the_no_memory_arm_shares_the_base(tmp_path):
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.evals.vllm.make_tiny_lora import make_tiny_lora
    from memento.llm.transformers_backend import dequantize_gguf

    config = EvalConfig(out_dir=str(tmp_path / "run"), arms=[NO_MEMORY, "neural"], distill=DistillSpec(every=2),
                        llm={"backend": "llamacpp", "options": {"max_tokens": 8}})
    assert arm_llms(config.model_copy(update={"distill": None}), object()) is None  # no distillation: one LLM
    arms = {name: open_arm(name, config, tmp_path / "run") for name in config.arms}
    try:
        shared = build_llm(config)
        llm_of = arm_llms(config, shared)
        assert llm_of(arms[NO_MEMORY]) is shared
        follower = llm_of(arms["neural"])
        assert follower is not shared and follower.config.distilled_from == str(arms["neural"].bank.path)
        plain = follower.complete(QUESTION)
        assert plain.model == shared.model and plain.text == shared.complete(QUESTION).text  # nothing promoted yet
        registry = AdapterRegistry(arms["neural"].bank.path)
        registry.add(make_tiny_lora(dequantize_gguf(), tmp_path / "lora"), {"gate": {"passed": True, "failed": []}}, [])
        registry.promote("v0001")  # what a background distillation does when its gate passes
        adapted = follower.complete(QUESTION)
        assert adapted.model == "v0001" and adapted.text != plain.text
        assert shared.complete(QUESTION).text == plain.text  # the other arm's LLM is untouched
    finally:
        for arm in arms.values():
            arm.close()
