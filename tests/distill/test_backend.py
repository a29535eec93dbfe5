"""The transformers backend uses the adapter promoted for a bank, and follows promote and rollback."""

import pytest

from memento.distill import AdapterRegistry

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_the_backend_follows_the_promoted_adapter(tmp_path):
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.evals.vllm.make_tiny_lora import make_tiny_lora
    from memento.llm import load_llm
    from memento.llm.transformers_backend import dequantize_gguf

    folder = dequantize_gguf()
    registry = AdapterRegistry(tmp_path / "cases.db")
    for seed in (0, 1):  # random adapters: each changes the answer, each differently
        adapter = make_tiny_lora(folder, tmp_path / f"lora-{seed}", seed=seed)
        registry.add(adapter, {"gate": {"passed": True, "failed": []}}, [])
    llm = load_llm("transformers", model=str(folder), distilled_from=str(tmp_path / "cases.db"), max_tokens=6)
    base = llm.complete(CAPITAL)
    assert base.model == llm.model and llm.distilled is None  # nothing promoted: the base model
    registry.promote("v0001")
    first = llm.complete(CAPITAL)
    assert first.model == "v0001" and first.text != base.text
    registry.promote("v0002")
    assert llm.complete(CAPITAL).model == "v0002"
    registry.rollback()
    again = llm.complete(CAPITAL)
    assert again.model == "v0001" and again.text == first.text
    registry.rollback()
    assert llm.complete(CAPITAL).text == base.text and llm.distilled is None
