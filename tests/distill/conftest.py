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


@pytest.fixture
def smol():
    """A fresh (model, tokenizer) of the dequantized SmolLM2 on the CPU (training wraps the model in place)."""
    pytest.importorskip("peft", reason="needs the extra memento[distill]")
    from memento.distill.model import load_base

    return load_base(device="cpu")
