"""Case banks behind one interface (`Bank`): SQLite + FAISS (`CaseBank`, the default) or PostgreSQL + pgvector.

`CaseBank.open(location)` opens either: a file path, or a `postgresql://` URL (`memento[postgres]`).
"""

from memento.bank.casebank import CaseBank
from memento.bank.interface import Bank, EpisodicEntry, PolicyState, ReplayRow, SearchHit
from memento.bank.vector_index import IndexConfig

__all__ = ["Bank", "CaseBank", "EpisodicEntry", "IndexConfig", "PolicyState", "ReplayRow", "SearchHit"]
