"""The case bank: SQLite rows (the source of truth) and a FAISS index rebuilt from them."""

from memento.bank.casebank import CaseBank, SearchHit
from memento.bank.vector_index import IndexConfig

__all__ = ["CaseBank", "IndexConfig", "SearchHit"]
