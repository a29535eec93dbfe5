"""The inspector's guards over plain HTTP against the real server: loopback by default, the token,
the Host header, cross-site edits, and case text always escaped."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memento.errors import NotFoundError, ValidationError
from memento.ui import UIConfig
from tests.ui.conftest import HOSTILE_TASK, csrf_of

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-the-tests-only-0123456789"


def test_a_host_other_than_loopback_needs_a_long_token(small_bank):
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert UIConfig(bank=str(small_bank), host=host).check()
    with pytest.raises(ValidationError, match="not a loopback address.*give a token"):
        UIConfig(bank=str(small_bank), host="0.0.0.0").check()
    with pytest.raises(ValidationError, match="fewer than 16"):
        UIConfig(bank=str(small_bank), host="0.0.0.0", token="short").check()
    assert UIConfig(bank=str(small_bank), host="0.0.0.0", token=TOKEN).check()
    with pytest.raises(NotFoundError, match="--runs"):
        UIConfig(bank=str(small_bank), runs=small_bank.parent / "nowhere").check()


def memento(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from memento.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_the_command_refuses_to_serve_everyone_without_a_token(small_bank):
    refused = memento("ui", "--bank", str(small_bank), "--host", "0.0.0.0", cwd=small_bank.parent)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: --host 0.0.0.0 is not a loopback address") and refused.stderr.count("\n") == 1
    missing = memento("ui", "--bank", "nope.db", "--check", cwd=small_bank.parent)
    assert missing.returncode == 1 and "bank 'nope.db' does not exist" in missing.stderr


def test_without_its_token_the_server_answers_nothing(start_server, small_bank):
    server = start_server(small_bank, token=TOKEN)
    with server.client(headers={"Authorization": ""}) as anonymous:
        refused = anonymous.get("/api/cases")
        assert refused.status_code == 401 and "needs its token" in refused.json()["error"]
        assert anonymous.get("/cases").status_code == 401
        assert anonymous.get("/api/cases", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert anonymous.get("/?token=wrong-token-wrong-token").status_code == 401
        visit = anonymous.get("/cases?token=" + TOKEN + "&namespace=acme/support")
        assert visit.status_code == 303 and visit.headers["location"] == "/cases?namespace=acme%2Fsupport"
        assert "HttpOnly" in visit.headers["set-cookie"] and "SameSite=strict" in visit.headers["set-cookie"]
        assert anonymous.get(visit.headers["location"]).status_code == 200, "the cookie now carries the token"
    with server.client() as bearer:
        assert {c["id"] for c in bearer.get("/api/cases").json()["cases"]} == {"hostile-1", "dup-keep", "dup-copy",
                                                                               "acme-fail"}


def test_a_request_addressed_to_another_host_is_refused(start_server, small_bank):
    server = start_server(small_bank)
    with server.client() as client:
        rebound = client.get("/api/cases", headers={"Host": "attacker.example"})
        assert rebound.status_code == 421 and "answers only requests addressed to it" in rebound.json()["error"]
        assert client.get("/api/cases", headers={"Host": "localhost"}).status_code == 200


def test_an_edit_needs_the_forms_token_and_this_origin(start_server, small_bank):
    server = start_server(small_bank)
    with server.client() as client:
        token = csrf_of(client.get("/edit/acme-fail").text)
        form = {"answer": "Orlen", "csrf_token": token}
        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        refusals = [client.post("/edit/acme-fail", data={"answer": "Orlen"}, headers=own),
                    client.post("/edit/acme-fail", data={**form, "csrf_token": "forged"}, headers=own),
                    client.post("/edit/acme-fail", data=form, headers={"Origin": "http://attacker.example"}),
                    client.post("/edit/acme-fail", data=form, headers={"Sec-Fetch-Site": "cross-site"})]
        assert [r.status_code for r in refusals] == [403, 403, 403, 403]
        assert client.get("/api/cases/acme-fail").json()["answer"] == "Thames", "a refused edit changes nothing"
        saved = client.post("/edit/acme-fail", data=form, headers=own)
        assert saved.status_code == 303 and saved.headers["location"] == "/cases/acme-fail?saved=answer"
        assert client.get("/api/cases/acme-fail").json()["answer"] == "Orlen"


def test_case_text_is_escaped_and_no_page_may_run_a_script(start_server, small_bank):
    server = start_server(small_bank)
    with server.client() as client:
        for path in ("/cases/hostile-1", "/cases", "/cases?q=who+wrote", "/edit/hostile-1", "/duplicates"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert "<script" not in page.text and "<img" not in page.text and "<b>" not in page.text, path
            assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none' covers scripts
            assert "default-src 'none'" in page.headers["content-security-policy"]
        case_page = client.get("/cases/hostile-1").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Who wrote &lt;b&gt;this&lt;/b&gt; &amp; why?" in case_page
        assert client.get("/api/cases/hostile-1").json()["task"] == HOSTILE_TASK


@pytest.mark.slow
def test_the_command_serves_a_bank_of_the_packaged_model_with_its_token(tmp_path, real_embedder):
    import httpx

    from memento.bank import CaseBank
    from tests.ui.conftest import EXTRA_CASES, free_port

    path = tmp_path / "real.db"
    with CaseBank(path, real_embedder, create=True) as bank:
        bank.add_many(EXTRA_CASES)
        expected = [h.case.id for h in bank.search("who started the Vellmora shipping firm", k=3)]
    port = str(free_port())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEMENTO_UI_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-c", "from memento.cli import main; main()", "ui", "--bank", str(path),
                                "--port", port], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(" at http://" in line for line in lines):
            line = process.stderr.readline()
            assert line, f"the server stopped: {lines}"
            lines.append(line)
        assert lines[-1].strip() == f"memento ui: bank {path} at http://127.0.0.1:{port}/?token={TOKEN} (Ctrl-C to stop)"
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/cases").status_code == 401
        found = httpx.get(f"{base}/api/cases", params={"q": "who started the Vellmora shipping firm"},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).json()
        assert [c["id"] for c in found["cases"][:3]] == expected
        taken = memento("ui", "--bank", str(path), "--port", port, cwd=tmp_path)
        assert taken.returncode == 1 and f"cannot listen on 127.0.0.1 port {port}" in taken.stderr
    finally:
        process.terminate()
        process.wait(30)
