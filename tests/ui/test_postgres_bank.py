"""The inspector over a PostgreSQL bank (`memento ui --bank postgresql://...`): the same pages and API."""

import uuid

import pytest

from memento.bank import CaseBank
from tests.fakes import FakeHashEmbedder
from tests.ui.conftest import EXTRA_CASES

pytestmark = pytest.mark.postgres


def test_the_inspector_lists_searches_and_shows_a_server_bank(start_server, postgres_url):
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=ui_{uuid.uuid4().hex[:10]}"
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        bank.add_many(EXTRA_CASES)
    server = start_server(url)
    with server.client() as client:
        listed = client.get("/api/cases").json()["cases"]
        assert {c["id"] for c in listed} == {c["id"] for c in EXTRA_CASES}
        one = client.get("/api/cases/hostile-1")
        assert one.status_code == 200 and one.json()["id"] == "hostile-1"
        page = client.get("/cases/hostile-1")
        assert page.status_code == 200 and "<script>alert" not in page.text
