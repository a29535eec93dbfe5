"""SearxNG adapter against a stand-in server on 127.0.0.1 that this test starts."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from memento.tools.web import (SearxNG, WebConnectionError, WebError, WebResponseError, WebSearch,
                               WebTimeoutError, html_to_text, web_tools)

PAGE = """<!doctype html><html><head><title>Ada  Lovelace</title><style>p {color: red}</style>
<script>var hidden = "not text";</script></head>
<body><nav><ul><li>Home</li><li>About</li></ul></nav>
<h1>Ada Lovelace</h1><p>Ada Lovelace wrote the first <b>published</b> algorithm &amp; more.</p>
<p>Born 1815.<br>Died 1852.</p><noscript>enable JS</noscript></body></html>"""


class StandIn(BaseHTTPRequestHandler):
    """Answers like a SearxNG instance at /search, and serves a few pages."""

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/search":
            query = parse_qs(url.query)
            if query.get("format") != ["json"]:
                return self.reply(403, "text/html", "<p>format not allowed</p>")
            q = query["q"][0]
            results = [{"title": f"{q} result {n}", "url": f"https://example.org/{n}", "content": f"snippet {n}"}
                       for n in range(1, 8)]
            return self.reply(200, "application/json", json.dumps({"query": q, "results": results}))
        routes = {
            "/page": (200, "text/html; charset=utf-8", PAGE),
            "/plain": (200, "text/plain", "just text"),
            "/image": (200, "image/png", "\x89PNG"),
            "/missing": (404, "text/html", "<p>not found</p>"),
            "/html-site/search": (200, "text/html", "<p>a site, not SearxNG</p>"),
            "/huge": (200, "text/plain", "y" * 5000),
        }
        if url.path == "/slow":
            time.sleep(1.0)
            return self.reply(200, "text/plain", "late")
        self.reply(*routes.get(url.path, (404, "text/plain", "no route")))

    def reply(self, status: int, content_type: str, body: str):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the timeout test hangs up on /slow before it answers: expected, not worth a traceback


@pytest.fixture(scope="module")
def base_url():
    server = QuietServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def searx(base_url):
    client = SearxNG(base_url, timeout_s=0.3, max_page_bytes=4000)
    yield client
    client.close()


def test_searxng_is_a_web_search():
    assert isinstance(SearxNG("http://127.0.0.1:1"), WebSearch)


def test_search_returns_the_top_k_results(searx):
    results = searx.search("lovelace", k=3)
    assert [(r.title, r.url, r.snippet) for r in results] == [
        (f"lovelace result {n}", f"https://example.org/{n}", f"snippet {n}") for n in (1, 2, 3)]


def test_fetch_strips_html_to_visible_text(searx, base_url):
    assert searx.fetch(f"{base_url}/page") == (
        "Ada Lovelace\n\nHome\nAbout\nAda Lovelace\nAda Lovelace wrote the first published algorithm & more.\n"
        "Born 1815.\nDied 1852.")
    assert searx.fetch(f"{base_url}/plain") == "just text"


def test_html_to_text_without_title():
    assert html_to_text("<div>a <i>b</i></div><div>c</div>") == "a b\nc"


@pytest.mark.parametrize("path,error,match", [
    ("/missing", WebResponseError, "HTTP 404"),
    ("/image", WebResponseError, "not a text page"),
    ("/huge", WebResponseError, "more than 4000 bytes"),
    ("/slow", WebTimeoutError, "no answer within 0.3 s"),
])
def test_fetch_failures_are_typed_tool_errors(searx, base_url, path, error, match):
    with pytest.raises(error, match=match):
        searx.fetch(f"{base_url}{path}")


def test_a_server_that_is_not_searxng(base_url):
    with pytest.raises(WebResponseError, match="did not answer with SearxNG JSON"):
        SearxNG(f"{base_url}/html-site").search("x")


def test_unreachable_host_and_bad_scheme(searx):
    with pytest.raises(WebConnectionError, match="could not be reached"):
        SearxNG("http://127.0.0.1:9", timeout_s=0.5).search("x")
    with pytest.raises(WebError, match="only http:// and https://"):
        searx.fetch("file:///etc/passwd")


def test_web_tools_format_results_and_errors(searx, base_url):
    search, fetch = web_tools(searx, max_page_chars=20)
    assert (search.name, fetch.name) == ("web_search", "fetch_page")
    assert search.invoke({"query": "ada", "k": 2}) == (
        "[1] ada result 1\nhttps://example.org/1\nsnippet 1\n\n[2] ada result 2\nhttps://example.org/2\nsnippet 2")
    page = searx.fetch(f"{base_url}/page")
    expected = f"{page[:20]}\n[truncated: showing 20 of {len(page)} characters]"
    assert fetch.invoke({"url": f"{base_url}/page"}) == expected
    assert fetch.invoke({"url": f"{base_url}/missing"}).startswith("error: ")
