"""The shared LLM logic (validation, structured output, usage, concurrency), driven by ScriptedLLM.

These tests are about the interface, not a model, so the replies come from a script.
"""

import asyncio
import importlib.util
import inspect
import json
import threading
import time

import pytest
from pydantic import BaseModel

import memento.llm
from memento.errors import LLMError, MissingExtraError, StructuredOutputError, ValidationError
from memento.llm import LLM, Completion, ScriptedLLM, Usage, load_llm
from memento.llm.json_schema import parse_json_reply, schema_problems


class Answer(BaseModel):
    answer: str
    confidence: float


def replies(*texts):
    """A handler returning the given texts in turn."""
    queue = list(texts)
    return lambda messages: queue.pop(0)


class InFlightCounter:
    """A handler that sleeps a little and records how many calls overlapped."""

    def __init__(self, delay_s=0.05):
        self.delay_s, self.now, self.peak = delay_s, 0, 0
        self.lock = threading.Lock()

    def __call__(self, messages):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay_s)
        with self.lock:
            self.now -= 1
        return "echo " + messages[-1]["content"]


def user(text):
    return [{"role": "user", "content": text}]


def test_public_api_is_exactly_all():
    public = {
        name for name, value in vars(memento.llm).items() if not name.startswith("_") and not inspect.ismodule(value)
    }
    public.discard("annotations")  # from __future__
    assert set(memento.llm.__all__) == public
    assert {"LLM", "Completion", "Usage", "Message", "load_llm", "ScriptedLLM", "smollm2_gguf_path"} <= public


def test_complete_returns_text_usage_and_latency():
    llm = ScriptedLLM(lambda messages: "four words right here")
    completion = llm.complete(user("say four words"))
    assert isinstance(llm, LLM) and isinstance(completion, Completion)
    assert completion.text == "four words right here"
    assert completion.usage == Usage(prompt_tokens=3, completion_tokens=4)
    assert completion.usage.total_tokens == 7
    assert completion.latency_s >= 0 and completion.finish_reason == "stop"


def test_usage_total_adds_up_every_call():
    llm = ScriptedLLM(lambda messages: "a b")
    llm.complete(user("one"))
    llm.complete_many([user("two words"), user("three more words")])
    asyncio.run(llm.acomplete(user("x")))
    assert llm.usage_total == Usage(prompt_tokens=1 + 2 + 3 + 1, completion_tokens=8)


def test_defaults_and_overrides_reach_the_backend():
    llm = ScriptedLLM(lambda messages: "one two three four five", temperature=0.3, max_tokens=3)
    first = llm.complete(user("hi"))
    assert (llm.calls[0].temperature, llm.calls[0].max_tokens) == (0.3, 3)
    assert first.text == "one two three" and first.finish_reason == "length"
    llm.complete(user("hi"), temperature=0.0, max_tokens=10, stop="four", lora="tiny")
    request = llm.calls[1]
    assert (request.temperature, request.max_tokens, request.stop, request.lora) == (0.0, 10, ["four"], "tiny")


@pytest.mark.parametrize(
    "messages, fragment",
    [
        ([], "messages is empty"),
        ([{"role": "robot", "content": "hi"}], "no valid role"),
        ([{"role": "user", "content": 3}], "content must be a string"),
    ],
)
def test_bad_messages_are_refused_before_any_call(messages, fragment):
    llm = ScriptedLLM(lambda messages: "never")
    with pytest.raises(ValidationError, match=fragment):
        llm.complete(messages)
    assert llm.calls == []


def test_bad_sampling_settings_are_refused():
    llm = ScriptedLLM(lambda messages: "x")
    with pytest.raises(ValidationError, match="max_tokens 0"):
        llm.complete(user("hi"), max_tokens=0)
    with pytest.raises(ValidationError, match="temperature -1"):
        llm.complete(user("hi"), temperature=-1)
    with pytest.raises(ValidationError, match="concurrency 0"):
        llm.complete_many([user("hi")], concurrency=0)


def test_structured_returns_a_validated_model_and_asks_with_the_schema():
    llm = ScriptedLLM(replies('```json\n{"answer": "Paris", "confidence": 0.9}\n```'))
    result = llm.structured(user("capital of France?"), Answer)
    assert result == Answer(answer="Paris", confidence=0.9)
    request = llm.calls[0]
    assert request.json_schema == Answer.model_json_schema()
    # ScriptedLLM cannot constrain decoding, so the schema is spelled out in the prompt.
    assert request.messages[0]["role"] == "system" and '"confidence"' in request.messages[0]["content"]


def test_structured_repairs_once_showing_the_model_its_mistake():
    llm = ScriptedLLM(replies('{"answer": "Paris"', '{"answer": "Paris", "confidence": 1}'))
    result = llm.structured(user("capital of France?"), Answer)
    assert result.confidence == 1.0 and len(llm.calls) == 2
    repair = llm.calls[1].messages
    assert repair[-2] == {"role": "assistant", "content": '{"answer": "Paris"'}
    assert "not valid JSON" in repair[-1]["content"]


def test_structured_names_the_missing_field_in_the_repair():
    llm = ScriptedLLM(replies('{"answer": "Paris"}', '{"answer": "Paris", "confidence": 0.5}'))
    assert llm.structured(user("q"), Answer).confidence == 0.5
    assert "confidence" in llm.calls[1].messages[-1]["content"]


def test_structured_raises_after_one_failed_repair():
    llm = ScriptedLLM(replies("no json here", '{"answer": 1}'))
    with pytest.raises(StructuredOutputError, match="Answer after one repair try"):
        llm.structured(user("q"), Answer)
    assert len(llm.calls) == 2


def test_structured_with_a_dict_schema_returns_a_checked_dict():
    schema = {"type": "object", "properties": {"verdict": {"enum": ["yes", "no"]}}, "required": ["verdict"]}
    llm = ScriptedLLM(replies('{"verdict": "maybe"}', '{"verdict": "no"}'))
    assert llm.structured(user("q"), schema) == {"verdict": "no"}
    assert "not one of ['yes', 'no']" in llm.calls[1].messages[-1]["content"]


def test_astructured_repairs_too():
    llm = ScriptedLLM(replies("{", '{"answer": "x", "confidence": 0}'))
    assert asyncio.run(llm.astructured(user("q"), Answer)) == Answer(answer="x", confidence=0)


def test_schema_problems_cover_the_common_keywords():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "score": {"type": "integer", "minimum": 0},
            "kind": {"$ref": "#/$defs/Kind"},
        },
        "required": ["name", "score"],
        "additionalProperties": False,
        "$defs": {"Kind": {"enum": ["a", "b"]}},
    }
    assert schema_problems({"name": "x", "tags": ["t"], "score": 3, "kind": "a"}, schema) == []
    problems = schema_problems({"name": "", "tags": ["t", 2, "u"], "score": True, "kind": "c", "extra": 1}, schema)
    joined = "\n".join(problems)
    for fragment in ["$.name: breaks minLength", "$.tags[1]: expected string", "$.tags: breaks maxItems",
                     "$.score: expected integer", "$.kind: 'c' is not one of", "'extra' is not allowed"]:
        assert fragment in joined
    assert schema_problems({}, schema) == ["$: missing required field 'name'", "$: missing required field 'score'"]


def test_parse_json_reply_accepts_fences_and_blanks():
    assert parse_json_reply('  {"a": 1}\n') == {"a": 1}
    assert parse_json_reply('```json\n[1, 2]\n```') == [1, 2]
    with pytest.raises(json.JSONDecodeError):
        parse_json_reply("Sure! {")


def test_acomplete_many_keeps_order_and_the_concurrency_limit():
    counter = InFlightCounter()
    llm = ScriptedLLM(counter)
    batch = [user(f"q{i}") for i in range(9)]
    started = time.perf_counter()
    results = asyncio.run(llm.acomplete_many(batch, concurrency=3))
    elapsed = time.perf_counter() - started
    assert [r.text for r in results] == [f"echo q{i}" for i in range(9)]
    assert counter.peak == 3
    assert elapsed < 9 * counter.delay_s  # overlapped, not one after another


def test_complete_many_runs_threads_up_to_the_limit():
    counter = InFlightCounter()
    llm = ScriptedLLM(counter)
    results = llm.complete_many([user(f"q{i}") for i in range(6)], concurrency=2, max_tokens=5)
    assert [r.text for r in results] == [f"echo q{i}" for i in range(6)]
    assert counter.peak == 2
    assert llm.complete_many([]) == []


def failing_on(*contents, error=LLMError):
    """A handler that raises `error` for the given message contents and echoes the rest."""
    def handler(messages):
        content = messages[-1]["content"]
        if content in contents:
            raise error(f"scripted failure on {content!r}")
        return "echo " + content
    return handler


@pytest.mark.parametrize("error", [LLMError, ValidationError])
def test_one_failed_request_costs_only_itself(error):
    llm = ScriptedLLM(failing_on("q3", error=error))
    batch = [user(f"q{i}") for i in range(8)]
    for results in (llm.complete_many(batch, concurrency=4), asyncio.run(llm.acomplete_many(batch, concurrency=4))):
        assert [r.text for i, r in enumerate(results) if i != 3] == [f"echo q{i}" for i in range(8) if i != 3]
        assert isinstance(results[3], error) and "q3" in str(results[3])
    assert llm.usage_total.completion_tokens == 2 * 7 * 2  # 7 two-word replies, sync and async


def test_strict_raises_the_first_failure_once_the_batch_is_done():
    llm = ScriptedLLM(failing_on("q1", "q4"))
    with pytest.raises(LLMError, match="'q1'") as caught:
        llm.complete_many([user(f"q{i}") for i in range(6)], concurrency=2, strict=True)
    assert "request 1 of a batch of 6 failed (2 failed in all)" in caught.value.__notes__[0]
    assert len(llm.calls) == 6  # every request ran
    with pytest.raises(LLMError, match="'q1'"):
        asyncio.run(llm.acomplete_many([user(f"q{i}") for i in range(6)], strict=True))


def test_a_bug_in_a_backend_is_not_swallowed_by_a_batch():
    llm = ScriptedLLM(failing_on("q0", error=ZeroDivisionError))
    with pytest.raises(ZeroDivisionError):
        llm.complete_many([user("q0"), user("q1")])


def test_load_llm_names_the_backends_it_knows():
    with pytest.raises(ValidationError, match="unknown LLM backend 'gpt'.*'llamacpp'"):
        load_llm("gpt")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"memento\[vllm\]"):
        load_llm("vllm")


def test_openai_backend_needs_an_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValidationError, match="OPENAI_BASE_URL"):
        load_llm("openai")


@pytest.mark.parametrize("settings, fragment", [
    ({"timout_s": 5}, "OpenAIConfig has no setting 'timout_s'; the settings are api_key, backoff_s, base_url"),
    ({"timeout_s": "soon"}, "OpenAIConfig.timeout_s='soon' is a str, not float"),
    ({"max_retries": 1.5}, "OpenAIConfig.max_retries=1.5 is a float, not int"),
    ({"json_format": "xml"}, "OpenAIConfig.json_format='xml' is a str, not Literal"),
])
def test_a_backend_setting_that_does_not_exist_or_has_the_wrong_type_is_named(settings, fragment):
    with pytest.raises(ValidationError) as caught:
        load_llm("openai", base_url="http://127.0.0.1:9/v1", model="m", **settings)
    assert fragment in str(caught.value)


def test_backend_settings_of_the_right_type_are_taken():
    llm = load_llm("openai", base_url="http://127.0.0.1:9/v1", model="m", timeout_s=3, api_key=None, extra_body={})
    assert llm.config.timeout_s == 3
