"""SmolLM2 through transformers + peft on the CPU, from the dequantized GGUF.

Needs the extra `memento[distill]` (transformers, peft, gguf); skipped without it.
The first run dequantizes the GGUF into ~/.cache/memento/hf/ (a minute); later runs reuse it.
"""

import json

import pytest

pytest.importorskip("peft", reason="needs the extra memento[distill]")
pytest.importorskip("gguf", reason="needs the extra memento[distill]")

from memento.errors import ValidationError  # noqa: E402
from memento.llm import load_llm  # noqa: E402
from memento.llm.transformers_backend import dequantize_gguf  # noqa: E402

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def hf_folder():
    return dequantize_gguf()


@pytest.fixture(scope="module")
def tiny_lora(hf_folder, tmp_path_factory):
    from memento.evals.vllm.make_tiny_lora import make_tiny_lora

    return make_tiny_lora(hf_folder, tmp_path_factory.mktemp("lora") / "tiny")


@pytest.fixture(scope="module")
def model(hf_folder, tiny_lora):
    return load_llm("transformers", model=str(hf_folder), lora_adapters={"tiny": str(tiny_lora)})


def test_the_dequantized_folder_is_a_plain_float32_model(hf_folder):
    config = json.loads((hf_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (hf_folder / "model.safetensors").stat().st_size > 4 * 130_000_000  # float32 weights
    assert dequantize_gguf() == hf_folder  # cached: the second call does no work


def test_it_answers_like_llama_cpp_on_the_same_weights(model, smollm2):
    """The dequantized weights are the GGUF's own values, so greedy decoding picks the same words."""
    ours = model.complete(CAPITAL, max_tokens=12)
    theirs = smollm2.complete(CAPITAL, max_tokens=12)
    assert "Paris" in ours.text
    assert ours.text.split()[:4] == theirs.text.split()[:4]
    assert ours.usage.prompt_tokens == theirs.usage.prompt_tokens


def test_stop_and_max_tokens(model):
    cut = model.complete(CAPITAL, max_tokens=3)
    assert cut.usage.completion_tokens == 3 and cut.finish_reason == "length"
    full = model.complete(CAPITAL, max_tokens=12).text
    stop_word = full.split()[2]
    assert model.complete(CAPITAL, max_tokens=12, stop=[stop_word]).text == full[: full.index(stop_word)]


def test_a_lora_adapter_is_applied_per_call(model):
    base = model.complete(CAPITAL, max_tokens=8).text
    adapted = model.complete(CAPITAL, max_tokens=8, lora="tiny")
    assert adapted.model == "tiny" and adapted.text != base
    assert model.complete(CAPITAL, max_tokens=8).text == base  # the adapter is off again
    with pytest.raises(ValidationError, match="'nope' is not loaded"):
        model.complete(CAPITAL, lora="nope")
