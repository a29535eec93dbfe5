"""The JSON API and the edit forms over plain HTTP, against the real server on a copy of a real run's bank.

Each answer is checked against the library called directly in the same test, or against the run
folder's own files (episodes.jsonl, summary.json), never against numbers written down here.
"""

import html
import json

import numpy as np
import pytest

from memento.bank import CaseBank
from tests.fakes import FakeHashEmbedder
from tests.ui.conftest import csrf_of

pytestmark = pytest.mark.slow  # the session's eval run imports the agent and torch: about 15 s

OWN = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def server(start_server, ui_bank, tiny_run):
    return start_server(ui_bank, runs=tiny_run.parent, policy=ui_bank.parent / "policy.pt", page_size=5)


def library(bank_path):
    return CaseBank(bank_path, FakeHashEmbedder(), create=False)


def test_the_cases_pages_hold_every_case_once_and_the_filters_are_the_banks(server, ui_bank):
    with server.client() as client, library(ui_bank) as bank:
        seen, page = [], 1
        while True:
            answer = client.get("/api/cases", params={"page": page}).json()
            assert answer["total"] == len(bank) and len(answer["cases"]) <= 5
            seen += [c["id"] for c in answer["cases"]]
            if not answer["has_next"]:
                break
            page += 1
        assert sorted(seen) == sorted(c.id for c in bank.iter_cases()) and len(seen) == len(set(seen))
        checks = [({"namespace": "acme/support"}, {"namespace": "acme/support"}),
                  ({"failures": "1"}, {"max_reward": 0.0}),
                  ({"min_reward": "1"}, {"min_reward": 1.0}),
                  ({"where": "dataset=hotpotqa"}, {"where": {"dataset": "hotpotqa"}}),
                  ({"text": "quarry", "namespace": "acme/support"}, {"text": "quarry", "namespace": "acme/support"})]
        for params, filters in checks:
            answer = client.get("/api/cases", params=params).json()
            assert answer["total"] == bank.count(**filters), params
        assert client.get("/api/cases", params={"min_reward": "lots"}).json() == {
            "error": "min reward 'lots' is not a number; type e.g. 0.5, or leave it empty"}
        bad_key = client.get("/api/cases", params={"where": "a b=1"})
        assert bad_key.status_code == 400 and "metadata filter key" in bad_key.json()["error"]


def test_search_ranks_as_the_bank_does_with_the_policys_usefulness(server, ui_bank):
    query = "Who founded the Vellmora Shipping Company?"
    with server.client() as client, library(ui_bank) as bank:
        answer = client.get("/api/cases", params={"q": query, "namespace": "acme/support"}).json()
        hits = bank.search(query, k=5, namespace="acme/support")
        assert [(c["id"], round(c["similarity"], 5)) for c in answer["cases"]] == [(h.case.id, round(h.score, 5)) for h in hits]
        assert all(isinstance(c["usefulness"], float) for c in answer["cases"]), "a neural policy rates every case"


def test_what_the_agent_would_be_shown_is_the_policys_choice(server, ui_bank, tiny_run):
    from memento.plugins import plugin
    from memento.policy import TaskState

    task = json.loads((tiny_run / "episodes.jsonl").read_text().splitlines()[-1])["question"]
    with server.client() as client:
        answer = client.get("/api/shown", params={"q": task, "k": "3"}).json()
    with library(ui_bank) as bank:
        policy = plugin("policies").load_policy(ui_bank.parent / "policy.pt", bank, share=True)
        chosen = policy.select(TaskState.from_task(bank, task), k=3, explore=False)
        scores = policy.usefulness([s.case for s in chosen])
    assert answer["policy"] == "neural"
    assert [(c["id"], round(c["policy_score"], 5), round(c["similarity"], 5), round(c["usefulness"], 5))
            for c in answer["cases"]] == [(s.case.id, round(s.score, 5), round(s.similarity, 5), round(float(u), 5))
                                          for s, u in zip(chosen, scores)]


def test_a_case_says_how_often_it_was_shown_by_the_runs_own_record(server, tiny_run):
    records = [json.loads(line) for line in (tiny_run / "episodes.jsonl").read_text().splitlines()]
    learned = [r for r in records if r["arm"] == "neural" and r["learned"]]
    shown_ids = {s["id"] for r in learned for s in r["shown"]}
    assert shown_ids, "the run showed the neural arm some cases"
    with server.client() as client:
        for case_id in sorted(shown_ids)[:3]:
            exposure = client.get(f"/api/cases/{case_id}").json()["exposure"]
            episodes = [r for r in learned if case_id in {s["id"] for s in r["shown"]}]
            assert exposure["times"] == len(episodes)
            assert sorted(exposure["episodes"]) == sorted(r["case_id"] for r in episodes)
            assert exposure["successes"] == sum(r["reward"] > 0 for r in episodes)
        missing = client.get("/api/cases/no-such-case")
        assert missing.status_code == 404 and "case 'no-such-case' is not in bank" in missing.json()["error"]


def test_a_bad_edit_shows_the_librarys_message_and_changes_nothing(server, ui_bank):
    with server.client() as client:
        before = client.get("/api/cases/acme-fail").json()
        token = csrf_of(client.get("/edit/acme-fail").text)
        for field, value, message in [("reward", "2", "reward 2 is outside [0, 1]"),
                                      ("reward", "high", "reward 'high' is not a number"),
                                      ("task", "   ", "task text is empty"),
                                      ("namespace", "a//b", "namespace label '' must be a non-empty string"),
                                      ("metadata", "{not json", "metadata is not valid JSON")]:
            page = client.post("/edit/acme-fail", data={field: value, "csrf_token": token}, headers=OWN)
            assert page.status_code == 400 and message in html.unescape(page.text), (field, value)
        assert client.get("/api/cases/acme-fail").json() == before


def test_an_edit_goes_through_the_bank_and_a_new_task_is_embedded_again(server, ui_bank):
    with server.client() as client:
        token = csrf_of(client.get("/edit/acme-fail").text)
        saved = client.post("/edit/acme-fail", headers=OWN, data={
            "csrf_token": token, "task": "Which river runs past the Orlen docks?", "reward": "0.5",
            "plan": "Find the docks\nName the river", "metadata": '{"dataset": "hotpotqa", "checked": true}'})
        assert saved.status_code == 303 and saved.headers["location"] == "/cases/acme-fail?saved=metadata,plan,reward,task"
        case = client.get("/api/cases/acme-fail").json()
        assert (case["task"], case["reward"], case["plan"], case["metadata"]["checked"]) == (
            "Which river runs past the Orlen docks?", 0.5, ["Find the docks", "Name the river"], True)
    with library(ui_bank) as bank:
        expected = FakeHashEmbedder().embed(["Which river runs past the Orlen docks?"])[0]
        assert np.allclose(bank.vectors(["acme-fail"])[0], expected), "the new task was embedded again"


def test_delete_then_restore_gives_back_the_same_case(server, ui_bank):
    with server.client() as client, library(ui_bank) as bank:
        before, vector = client.get("/api/cases/dup-keep").json(), bank.vectors(["dup-keep"])[0]
        token = csrf_of(client.get("/cases/dup-keep").text)
        deleted = client.post("/delete/dup-keep", data={"csrf_token": token}, headers=OWN)
        assert deleted.status_code == 303 and deleted.headers["location"].startswith("/trash?deleted=")
        assert client.get("/api/cases/dup-keep").status_code == 404
        trash = client.get("/api/trash").json()
        assert [c["id"] for c in trash[0]["cases"]] == ["dup-keep"] and not trash[0]["restored"]
        restored = client.post(f"/restore/{trash[0]['name']}", data={"csrf_token": token}, headers=OWN)
        assert restored.status_code == 303 and restored.headers["location"] == "/cases/dup-keep?restored=1"
        assert client.get("/api/cases/dup-keep").json() == before
        assert np.array_equal(bank.vectors(["dup-keep"])[0], vector), "restored with its stored embedding"
        assert client.get("/api/trash").json()[0]["restored"]
        again = client.post(f"/restore/{trash[0]['name']}", data={"csrf_token": token}, headers=OWN)
        assert again.status_code == 400 and "already in the bank" in html.unescape(again.text)
        outside = client.post("/restore/..%2Fbank.db", data={"csrf_token": token}, headers=OWN)
        assert outside.status_code in (404, 400)


def test_merging_duplicates_keeps_the_best_and_refuses_a_stale_group(server, ui_bank):
    with server.client() as client:
        groups = client.get("/api/duplicates", params={"threshold": "0.99", "namespace": "acme/support"}).json()
        assert [(g["keep"], g["remove"]) for g in groups] == [("dup-keep", ["dup-copy"])]
        token = csrf_of(client.get("/duplicates").text)
        form = {"csrf_token": token, "keep": "dup-keep", "threshold": "0.99", "namespace": "acme/support"}
        stale = client.post("/merge", data={**form, "remove": "dup-copy\nacme-fail"}, headers=OWN)
        assert stale.status_code == 400 and "changed since the page was shown" in html.unescape(stale.text)
        assert client.get("/api/cases/acme-fail").status_code == 200
        merged = client.post("/merge", data={**form, "remove": "dup-copy"}, headers=OWN)
        assert merged.status_code == 303
        assert client.get("/api/cases/dup-copy").status_code == 404 and client.get("/api/cases/dup-keep").status_code == 200
        assert client.get("/api/trash").json()[0]["reason"] == "merge"


def test_the_run_is_served_as_its_folder_holds_it(server, tiny_run):
    with server.client() as client:
        assert [r["name"] for r in client.get("/api/runs").json()] == ["tiny"]
        run = client.get("/api/runs/tiny").json()
        assert run["summary"] == json.loads((tiny_run / "summary.json").read_text()) | {"complete": True}
        assert run["plots"] == sorted(p.name for p in tiny_run.glob("*.png")) and "learning_curve.png" in run["plots"]
        lines = (tiny_run / "episodes.jsonl").read_text().splitlines()
        assert client.get("/api/runs/tiny/episodes").json()["total"] == len(lines)
        assert client.get("/api/runs/tiny/episodes", params={"arm": "neural"}).json()["total"] == sum(
            json.loads(line)["arm"] == "neural" for line in lines)
        fifth = client.get("/api/runs/tiny/episodes/5").json()
        assert {k: v for k, v in fifth.items() if k not in ("number", "superseded")} == json.loads(lines[4])
        png = client.get("/runs/tiny/plots/learning_curve.png")
        assert png.content == (tiny_run / "learning_curve.png").read_bytes()
        assert client.get("/runs/tiny/plots/summary.json").status_code == 404
        assert client.get("/api/runs/tiny/episodes/999").status_code == 404
        assert client.get("/api/runs/elsewhere").status_code == 404
        for page in ("/runs", "/runs/tiny", "/runs/tiny/episodes/5"):
            assert client.get(page).status_code == 200, page
