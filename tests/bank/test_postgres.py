"""What only the PostgreSQL backend has: its URL, opening a server's schema, versions, index kinds, many creators."""

import subprocess
import sys
import uuid

import numpy as np
import pytest

from memento import Case, CaseBank
from memento.bank.postgres import PostgresBank
from memento.bank.postgres.config import parse_url
from memento.errors import BankError, NotFoundError, ValidationError
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.postgres
psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL tests need the postgres extra: pip install -e '.[postgres]'")


@pytest.fixture
def url(postgres_url):
    """A URL naming a schema no test has used."""
    return f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=p{uuid.uuid4().hex[:12]}"


def sql(url, statement):
    with psycopg.connect(parse_url(url)[0], autocommit=True) as conn:
        conn.execute(statement)


def test_the_url_keeps_its_password_out_of_sight():
    conninfo, shown, config = parse_url("postgresql://ana:s3cret@db:5432/mem?schema=team_a&index=ivfflat&lists=50"
                                        "&sslmode=require")
    assert "s3cret" in conninfo and "s3cret" not in shown and "schema" not in conninfo and "sslmode=require" in conninfo
    assert (config.schema, config.index, config.lists) == ("team_a", "ivfflat", 50)
    with pytest.raises(ValidationError, match="schema='Team-A' is not allowed"):
        parse_url("postgresql://db/mem?schema=Team-A")
    with pytest.raises(ValidationError, match="index kind 'annoy'"):
        parse_url("postgresql://db/mem?index=annoy")


def test_opening_what_is_not_a_bank(url):
    with pytest.raises(NotFoundError, match="does not exist; create it first"):
        CaseBank.open(url, FakeHashEmbedder(), create=False)
    schema = parse_url(url)[2].schema
    sql(url, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.notes (x int)")
    with pytest.raises(BankError, match="holds tables but is not a case bank"):
        CaseBank.open(url, FakeHashEmbedder())
    with pytest.raises(BankError, match="cannot open bank"):
        CaseBank.open("postgresql://nobody@/memento?host=/nonexistent-socket-folder", FakeHashEmbedder())


def test_schema_versions_are_checked(url):
    CaseBank.open(url, FakeHashEmbedder()).close()
    schema = parse_url(url)[2].schema
    sql(url, f"UPDATE {schema}.bank_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(BankError, match="schema version 99, this memento reads version 2; upgrade memento"):
        CaseBank.open(url, FakeHashEmbedder())
    sql(url, f"UPDATE {schema}.bank_meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(BankError, match="schema version 0, which this memento cannot migrate"):
        CaseBank.open(url, FakeHashEmbedder())


def test_a_version_1_bank_is_migrated_to_note_recorded_episodes(url):
    CaseBank.open(url, FakeHashEmbedder()).close()
    schema = parse_url(url)[2].schema
    sql(url, f"DROP TABLE {schema}.policy_ec_episodes; "
             f"UPDATE {schema}.bank_meta SET value = '1' WHERE key = 'schema_version'")
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        assert not bank.episodic_recorded("ec", "e1")
        bank.write_episodic_entries("ec", [], episode_id="e1")
        assert bank.episodic_recorded("ec", "e1")
        assert bank.stats() is not None


@pytest.mark.parametrize("kind", ["hnsw", "ivfflat", "flat"])
def test_each_index_kind_finds_the_nearest_case(url, kind):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 64))
    with CaseBank.open(url, FakeHashEmbedder(), index=kind) as bank:
        stored = bank.add_many([Case(task=f"t{i}") for i in range(300)], vectors=vectors)
        bank.reindex()  # IVFFlat learns its lists from the rows
        assert bank.search(vectors[7], k=1)[0].case.id == stored[7].id
    with CaseBank.open(url, FakeHashEmbedder()) as reopened:  # the kind is remembered
        assert isinstance(reopened, PostgresBank) and reopened.config.index == kind
        assert reopened.stats()["index"]["kind"] == kind


OPENER = """
import sys
from memento import Case, CaseBank
from tests.fakes import FakeHashEmbedder
with CaseBank.open(sys.argv[1], FakeHashEmbedder()) as bank:
    bank.add(Case(task="from " + sys.argv[2]))
"""


@pytest.mark.slow
def test_processes_creating_one_new_bank_at_once_create_it_once(url):
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, url, str(i)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
               for i in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in openers), [p.stderr.read() for p in openers]
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        assert bank.count() == 4


def test_a_nul_character_is_a_validation_error_and_stores_nothing(url):
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        with pytest.raises(ValidationError, match="NUL"):
            bank.add_many([Case(task="fine"), Case(task="bad \x00 task")])
        with pytest.raises(ValidationError, match="NUL"):
            bank.count(where={"k": "a\x00b"})
        assert bank.count() == 0
