"""The PostgreSQL + pgvector backend of the `Bank` interface (`pip install 'memento[postgres]'`)."""

from memento.bank.postgres.bank import PostgresBank
from memento.bank.postgres.config import PostgresConfig

__all__ = ["PostgresBank", "PostgresConfig"]
