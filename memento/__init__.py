"""memento: agent memory for gradient-free continual learning.

Finished tasks become cases in a `CaseBank`; a case-selection policy (see `policies`)
learns from rewards which past cases help on a new task. The LLM is never fine-tuned.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from memento.case import Case, Step
from memento.embedders import Embedder, SentenceTransformerEmbedder, default_embedder
from memento.errors import MementoError

if _TYPE_CHECKING:  # for type checkers and IDEs; at run time they load on first use
    from memento.bank import CaseBank, IndexConfig, SearchHit

__version__ = "0.1.0"

__all__ = [
    "Case", "CaseBank", "Embedder", "IndexConfig", "MementoError", "SearchHit",
    "SentenceTransformerEmbedder", "Step", "default_embedder",
]

# The bank pulls in FAISS and sqlite-utils (about half the import time): they load on first
# use of a bank name, so `import memento` for a Case or an error does not pay for them.
_LAZY = {"CaseBank": "memento.bank", "IndexConfig": "memento.bank", "SearchHit": "memento.bank"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'memento' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
