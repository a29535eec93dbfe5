"""The openai backend against real OpenAI-compatible servers on 127.0.0.1.

One suite, two servers: llama-cpp-python's own server with the SmolLM2 GGUF (started here), and
`vllm serve` with the dequantized SmolLM2 and a tiny LoRA adapter (started by
evals/vllm/setup_and_test.sh, which sets MEMENTO_VLLM_URL; marked `vllm`, skipped otherwise).
"""

import asyncio
import json

import pytest
from pydantic import BaseModel

from memento.llm.openai_backend import OpenAILLM

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
TINY_LORA = "tiny"  # the adapter name setup_and_test.sh passes to `vllm serve --lora-modules`


class Capital(BaseModel):
    country: str
    capital: str


@pytest.fixture(scope="module", params=["llama_server", pytest.param("vllm_server", marks=pytest.mark.vllm)])
def endpoint(request):
    if request.param == "llama_server":
        url = request.getfixturevalue("llama_server_url")
        # llama_cpp.server takes a schema as {"type": "json_object", "schema": ...}, and its default
        # repeat_penalty (1.1) would make its answers differ from the embedded backend's.
        return OpenAILLM(base_url=url, json_format="json_object", extra_body={"repeat_penalty": 1.0}, timeout_s=120)
    return OpenAILLM(base_url=request.getfixturevalue("vllm_server_url"), timeout_s=120)


def test_chat_answers_with_usage(endpoint):
    completion = endpoint.complete(CAPITAL, max_tokens=12)
    assert "Paris" in completion.text
    assert completion.usage.prompt_tokens > 10 and 0 < completion.usage.completion_tokens <= 12
    assert completion.finish_reason == "stop"
    assert endpoint.model  # found through GET /v1/models


def test_max_tokens_and_stop_are_honoured(endpoint):
    cut = endpoint.complete(CAPITAL, max_tokens=3)
    assert cut.usage.completion_tokens == 3 and cut.finish_reason == "length"
    full = endpoint.complete(CAPITAL, max_tokens=12).text
    stop_word = full.split()[2]
    assert endpoint.complete(CAPITAL, max_tokens=12, stop=[stop_word]).text == full[: full.index(stop_word)]


def test_json_schema_output_parses_into_a_pydantic_model(endpoint):
    result = endpoint.structured(
        [{"role": "user", "content": "Give the country France and its capital city as JSON."}], Capital, max_tokens=40
    )
    assert isinstance(result, Capital) and result.capital.strip().lower() == "paris"


def test_the_server_constrains_the_raw_text_to_the_schema(endpoint):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    completion = endpoint.complete([{"role": "user", "content": "Is Paris in France?"}], json_schema=schema, max_tokens=16)
    assert json.loads(completion.text) in ({"answer": "yes"}, {"answer": "no"})


def test_concurrent_requests_all_come_back_in_order(endpoint):
    questions = [[{"role": "user", "content": f"What is {n} + {n}?"}] for n in range(1, 5)]
    expected = [endpoint.complete(q, max_tokens=10).text for q in questions]
    results = asyncio.run(endpoint.acomplete_many(questions, concurrency=4, max_tokens=10))
    assert [r.text for r in results] == expected


def test_llama_server_answers_like_the_embedded_backend(request):
    """Same GGUF, same greedy sampler once repeat_penalty is sent as 1.0: the same words."""
    url = request.getfixturevalue("llama_server_url")
    server = OpenAILLM(base_url=url, extra_body={"repeat_penalty": 1.0}, timeout_s=120)
    embedded = request.getfixturevalue("smollm2")
    question = [{"role": "user", "content": "Write a sentence about cats."}]
    assert server.complete(question, max_tokens=16).text == embedded.complete(question, max_tokens=16).text


@pytest.mark.vllm
def test_a_lora_adapter_is_addressed_by_name(vllm_server_url):
    llm = OpenAILLM(base_url=vllm_server_url, timeout_s=120)
    base = llm.complete(CAPITAL, max_tokens=12)
    adapted = llm.complete(CAPITAL, max_tokens=12, lora=TINY_LORA)
    assert adapted.model == TINY_LORA
    assert adapted.text != base.text  # the random adapter moves the weights, so the words change
    assert llm.complete(CAPITAL, max_tokens=12).text == base.text


@pytest.mark.vllm
def test_the_promoted_distilled_adapter_is_loaded_into_vllm_serve_and_answers_by_name(vllm_server_url, distilled):
    """The server starts without it; the first call with distilled_from loads it (/v1/load_lora_adapter)."""
    import httpx

    plain = OpenAILLM(base_url=vllm_server_url, timeout_s=120)
    follower = OpenAILLM(base_url=vllm_server_url, distilled_from=distilled["bank"], timeout_s=120)
    name = distilled["served_name"]
    assert name not in [m["id"] for m in httpx.get(f"{vllm_server_url}/models").json()["data"]]
    for example in distilled["trained"]:
        adapted = follower.complete(example["messages"], max_tokens=16)
        assert adapted.model == name and follower.distilled == distilled["version"]
        assert example["answer"] in adapted.text, adapted.text  # a made-up fact only the adapter knows
        assert example["answer"] not in plain.complete(example["messages"], max_tokens=16).text
    assert name in [m["id"] for m in httpx.get(f"{vllm_server_url}/models").json()["data"]]
    by_name = plain.complete(distilled["trained"][0]["messages"], max_tokens=16, lora=name)
    assert distilled["trained"][0]["answer"] in by_name.text  # now served by name to any client


def test_a_server_that_cannot_load_the_promoted_adapter_says_how_to_serve_it(llama_server_url, tmp_path):
    """llama_cpp.server has no /v1/load_lora_adapter: the call fails naming the vllm serve flags, nothing is sent."""
    from memento.distill import AdapterRegistry
    from memento.errors import LLMResponseError

    registry = AdapterRegistry(tmp_path / "cases.db")
    (tmp_path / "adapter").mkdir()
    registry.add(tmp_path / "adapter", {"gate": {"passed": True, "failed": []}}, [])
    registry.promote("v0001")
    llm = OpenAILLM(base_url=llama_server_url, distilled_from=str(tmp_path / "cases.db"), max_retries=0)
    with pytest.raises(LLMResponseError, match=r"does not serve the promoted adapter 'cases-v0001'.*"
                                               r"--lora-modules cases-v0001=.*v0001/adapter.*RUNTIME_LORA_UPDATING"):
        llm.complete(CAPITAL, max_tokens=4)
