"""memento: agent memory for gradient-free continual learning.

Finished tasks become cases in a `CaseBank`; a case-selection policy (see `policies`)
learns from rewards which past cases help on a new task. The LLM is never fine-tuned.
"""

from memento.bank import CaseBank, IndexConfig, SearchHit
from memento.case import Case, Step
from memento.embedders import Embedder, SentenceTransformerEmbedder, default_embedder
from memento.errors import MementoError

__version__ = "0.1.0"

__all__ = [
    "Case", "CaseBank", "Embedder", "IndexConfig", "MementoError", "SearchHit",
    "SentenceTransformerEmbedder", "Step", "default_embedder",
]
