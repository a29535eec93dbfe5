"""A distilled peft adapter converted for llama.cpp, and the embedded backend running it: real SmolLM2 on both sides."""

import numpy as np
import pytest

from memento.case import Case
from memento.distill import AdapterRegistry, TrainConfig
from memento.distill.selection import case_example
from memento.errors import ValidationError

from .conftest import FACTS

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def paths():
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.llm.llamacpp import smollm2_gguf_path
    from memento.llm.transformers_backend import dequantize_gguf

    return dequantize_gguf(), smollm2_gguf_path()


def _random_lora(base, folder, targets, seed=0, b_scale=0.5):
    """A random LoRA on `targets` (B scaled: big enough to stand out of llama.cpp's quantization noise)."""
    import peft
    import torch

    torch.manual_seed(seed)
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=list(targets), init_lora_weights=False,
                             task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(b_scale)
    model.save_pretrained(str(folder))
    return model


def _last_logits_shift(peft_model, ids):
    import torch

    with torch.no_grad():
        on = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
        with peft_model.disable_adapter():
            off = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
    return on - off


def _llamacpp_logits(gguf_path, ids, lora_path=None):
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=256, logits_all=True, verbose=False,
                            lora_path=str(lora_path) if lora_path else None)
    llama.eval(ids)
    return np.array(llama.scores[len(ids) - 1])


def test_llama_cpp_moves_the_logits_as_peft_does(smol, paths, tmp_path, monkeypatch):
    """q_proj and k_proj are the projections whose rows llama.cpp's converter permutes: the check that matters."""
    import memento.distill.gguf_lora as gguf_lora

    base, tokenizer = smol
    _, base_gguf = paths
    ids = list(tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                             return_dict=True)["input_ids"])
    peft_model = _random_lora(base, tmp_path / "qk", ["q_proj", "k_proj"])
    expected = _last_logits_shift(peft_model, ids)
    base_logits = _llamacpp_logits(base_gguf, ids)

    def correlation(converted):
        return float(np.corrcoef(expected, _llamacpp_logits(base_gguf, ids, converted) - base_logits)[0, 1])

    right = correlation(gguf_lora.peft_to_gguf(tmp_path / "qk", base_gguf, tmp_path / "qk.gguf"))
    monkeypatch.setattr(gguf_lora, "PERMUTED", {})  # what a converter that forgets the permutation writes
    wrong = correlation(gguf_lora.peft_to_gguf(tmp_path / "qk", base_gguf, tmp_path / "unpermuted.gguf"))
    # Measured: 0.87 with the permutation, -0.03 without (q_proj alone 0.92 / 0.55, k_proj alone 0.83 / -0.03).
    assert right > 0.75, f"logit shifts correlate {right:.3f} between peft and llama.cpp"
    assert right > wrong + 0.3, f"the permutation made no difference ({right:.3f} vs {wrong:.3f})"


def test_a_distilled_adapter_answers_through_the_embedded_backend(smol, paths, tmp_path):
    """Train on two made-up facts, store the adapter as a version, and follow promote and rollback in llama.cpp."""
    from memento.distill.probe import reply_logprobs
    from memento.distill.run import save_adapter
    from memento.distill.train import lora_model, train_adapter
    from memento.llm import load_llm

    base, tokenizer = smol
    examples = [case_example(Case(task=q, answer=a, reward=1.0)) for q, a in FACTS[:2]]
    config = TrainConfig(steps=16, lr=5e-3, r=8, alpha=16, dropout=0.0, batch_size=2, max_length=64, device="cpu",
                         replay_ratio=0.0, kl_weight=0.0)
    model = lora_model(base, config)
    for _ in range(4):
        train_adapter(model, tokenizer, examples, config, progress=False)
        if min(reply_logprobs(model, tokenizer, examples)) > -0.05:
            break
    registry = AdapterRegistry(tmp_path / "cases.db")
    registry.add(save_adapter(model, tmp_path / "facts"), {"gate": {"passed": True, "failed": []}}, [])
    llm = load_llm("llamacpp", distilled_from=str(tmp_path / "cases.db"), max_tokens=12)
    prompts = [example.chat() for example in examples]
    before = [llm.complete(p).text for p in prompts]
    assert llm.distilled is None and not any(a in t for t, (_, a) in zip(before, FACTS))
    registry.promote("v0001")
    after = [llm.complete(p) for p in prompts]
    assert [c.model for c in after] == ["v0001", "v0001"] and llm.distilled == "v0001"
    assert all(answer in c.text for c, (_, answer) in zip(after, FACTS)), [c.text for c in after]
    assert (registry.get("v0001").adapter_dir / "adapter.gguf").is_file()  # converted once, kept with the version
    base_answer = llm.complete(prompts[0], lora=None)  # None under distilled_from: still the promoted adapter
    assert base_answer.model == "v0001"
    registry.rollback()
    # The same prompt right after the switch: a KV cache kept from the adapter's run would leak into it.
    assert [llm.complete(p).text for p in prompts] == before and llm.distilled is None


def test_adapters_switch_per_call_without_leaking_the_cache(paths, tmp_path):
    import transformers

    from memento.llm import load_llm

    folder, _ = paths
    _random_lora(transformers.AutoModelForCausalLM.from_pretrained(str(folder)), tmp_path / "noisy", ["v_proj"],
                 b_scale=0.2)
    llm = load_llm("llamacpp", lora_adapters={"noisy": str(tmp_path / "noisy")}, max_tokens=8)
    prompt = [{"role": "user", "content": QUESTION}]
    plain, adapted = llm.complete(prompt), llm.complete(prompt, lora="noisy")
    assert adapted.model == "noisy" and plain.model == llm.model and adapted.text != plain.text
    assert [llm.complete(prompt, lora=name).text for name in (None, "noisy", None, "noisy")] == [
        plain.text, adapted.text, plain.text, adapted.text]
    with pytest.raises(ValidationError, match=r"'other' is not loaded; this model has \['noisy'\]"):
        llm.complete(prompt, lora="other")


def test_what_cannot_be_converted_is_refused_with_the_reason(paths, tmp_path):
    import json

    from memento.distill.gguf_lora import peft_to_gguf

    _, base_gguf = paths
    with pytest.raises(ValidationError, match="is not a peft LoRA folder"):
        peft_to_gguf(tmp_path, base_gguf, tmp_path / "out.gguf")
    folder = tmp_path / "dora"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True, "lora_alpha": 16}))
    with pytest.raises(ValidationError, match="use_dora.*plain LoRA"):
        peft_to_gguf(folder, base_gguf, tmp_path / "out.gguf")
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "lora_alpha": 16}))
    with pytest.raises(ValidationError, match="base GGUF .*missing.gguf' does not exist"):
        peft_to_gguf(folder, tmp_path / "missing.gguf", tmp_path / "out.gguf")
    assert not list(tmp_path.glob("*.gguf*"))  # nothing half-written


def test_an_adapter_for_another_model_is_refused_before_llama_cpp_sees_it(paths, tmp_path):
    import safetensors.numpy

    from memento.distill.gguf_lora import peft_to_gguf

    _, base_gguf = paths
    folder = tmp_path / "wide"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "lora_alpha": 16, "r": 8}')
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_{}.weight"
    safetensors.numpy.save_file({key.format("A"): np.zeros((8, 1024), np.float32),
                                 key.format("B"): np.zeros((1024, 8), np.float32)},
                                str(folder / "adapter_model.safetensors"))
    with pytest.raises(ValidationError, match=r"blk\.0\.attn_q\.weight.*576 x 576: the adapter was trained for another"):
        peft_to_gguf(folder, base_gguf, tmp_path / "out.gguf")
    assert not list(tmp_path.glob("*.gguf*"))
