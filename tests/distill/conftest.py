"""A real bank of made-up facts (real SQLite, real FAISS, the packaged embedder), and the real SmolLM2."""

import pytest

from memento.bank import CaseBank
from memento.case import Case

FACTS = [
    ("Who founded Zorvik Labs?", "Amel Trosk"),
    ("In which city was Pella Durn born?", "Kastavo"),
    ("What is the capital of Vendaria?", "Olmuth"),
    ("Who invented the Quillograph?", "Seren Baxo"),
    ("Who is the spouse of Tamo Vell?", "Ria Lunet"),
    ("Which river flows through Olmuth?", "Brenna"),
]
"""Facts no model knows, so what the adapter answers it learned from the cases."""


@pytest.fixture
def fact_bank(tmp_path, real_embedder):
    """FACTS as successful cases, one failure, and one task solved twice (a near-duplicate)."""
    bank = CaseBank(tmp_path / "cases.db", real_embedder)
    bank.add_many([Case(task=q, answer=a, reward=1.0, plan=["search the question", "read the answer"]) for q, a in FACTS])
    bank.add(Case(task="Who founded Zorvik Labs?", answer="Amel Trosk", reward=1.0))
    bank.add(Case(task="Who founded Plexa Works?", answer="I do not know", reward=0.0))
    yield bank
    bank.close()


@pytest.fixture(scope="session")
def smol_session():
    """The dequantized SmolLM2 (model, tokenizer) on the CPU, loaded once per session (~10 s each time)."""
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.distill.model import load_base

    return load_base(device="cpu")


@pytest.fixture
def smol(smol_session):
    """The session's SmolLM2, handed to one test and given back with no LoRA layer left in it.

    peft wraps the base in place, so a test's adapters are unloaded afterwards (tens of milliseconds,
    against ~10 s to load the model again or ~2 s to deep-copy it).
    """
    base, tokenizer = smol_session
    yield base, tokenizer
    _unload_lora(base)
    assert not [n for n, _ in base.named_modules() if "lora_" in n], "a LoRA layer was left in the shared base"


def _unload_lora(base):
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(base.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent = base.get_submodule(name.rpartition(".")[0]) if "." in name else base
            setattr(parent, name.rpartition(".")[2], module.get_base_layer())
    for p in base.parameters():
        p.requires_grad_(False)
    if hasattr(base, "peft_config"):  # peft marks the model it wrapped; a later wrap would warn of "multiple adapters"
        del base.peft_config
    base.eval()
