"""Web search and page fetch behind one small interface, with a SearxNG implementation.

Anything with `search(query, k)` and `fetch(url)` is a `WebSearch`; `web_tools` turns one into
the `web_search` and `fetch_page` LangChain tools. Failures raise these ToolErrors:

    ToolError
    └── WebError            base of the web adapter's errors
        ├── WebTimeoutError     no answer within the timeout
        ├── WebConnectionError  the host could not be reached
        └── WebResponseError    an error status, a body that is not what was asked, or too big
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, Field

from memento.errors import WebConnectionError, WebError, WebResponseError, WebTimeoutError
from memento.tools._common import make_tool, truncate


@dataclass(frozen=True)
class WebResult:
    """One web search hit."""

    title: str
    url: str
    snippet: str


@runtime_checkable
class WebSearch(Protocol):
    """A web search service that can also fetch a page as text."""

    def search(self, query: str, k: int = 5) -> list[WebResult]:
        """The top `k` results for `query`."""
        ...

    def fetch(self, url: str) -> str:
        """The readable text of the page at `url`."""
        ...


class SearxNG:
    """A SearxNG instance's JSON API (`/search?format=json`, which the instance must enable)."""

    def __init__(self, base_url: str, *, timeout_s: float = 15.0, max_page_bytes: int = 2_000_000,
                 client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.max_page_bytes = max_page_bytes
        self.client = client or httpx.Client(timeout=timeout_s, follow_redirects=True,
                                             headers={"User-Agent": "memento-agent"})

    def search(self, query: str, k: int = 5) -> list[WebResult]:
        url = f"{self.base_url}/search"
        body = self._get(url, params={"q": query, "format": "json"})
        try:
            rows = json.loads(body)["results"]
            if not isinstance(rows, list):
                raise TypeError("'results' is not a list")
        except (ValueError, KeyError, TypeError) as error:
            raise WebResponseError(f"{url} did not answer with SearxNG JSON ({error}); check that the URL is a "
                                   "SearxNG instance with 'json' in search.formats of its settings.yml") from error
        return [WebResult(str(row.get("title", "")), str(row.get("url", "")), str(row.get("content", "")))
                for row in rows[:k] if isinstance(row, dict)]

    def fetch(self, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise WebError(f"cannot fetch {url!r}: only http:// and https:// URLs can be fetched")
        body, content_type = self._get(url, with_type=True)
        text = body.decode("utf-8", errors="replace")
        if "html" in content_type:
            return html_to_text(text)
        if content_type.startswith("text/") or "json" in content_type or "xml" in content_type:
            return text
        raise WebResponseError(f"{url} is {content_type or 'of no stated type'}, not a text page; "
                               "download it and read it with the read_file tool instead")

    def close(self) -> None:
        self.client.close()

    def _get(self, url: str, *, params: dict | None = None, with_type: bool = False):
        try:
            with self.client.stream("GET", url, params=params) as response:
                if response.status_code >= 400:
                    raise WebResponseError(f"{url} answered HTTP {response.status_code}; "
                                           "check the URL, or try again later")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_page_bytes:
                        raise WebResponseError(f"{url} sent more than {self.max_page_bytes} bytes; "
                                               "raise max_page_bytes to read larger pages")
                content_type = response.headers.get("content-type", "").lower()
        except httpx.TimeoutException as error:
            raise WebTimeoutError(f"{url} gave no answer within {self.client.timeout.read} s; "
                                  "try again, or raise timeout_s") from error
        except httpx.TransportError as error:
            raise WebConnectionError(f"{url} could not be reached ({error}); check the URL and the network") from error
        return (bytes(body), content_type) if with_type else bytes(body)


class _TextExtractor(HTMLParser):
    SKIPPED = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
              "header", "footer", "table", "ul", "ol", "pre", "blockquote", "title", "dt", "dd"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIPPED:
            self.skip_depth += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in self.SKIPPED and self.skip_depth:
            self.skip_depth -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self.skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML page, one block a line, with its title first."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(parser.parts).split("\n"))
    body = "\n".join(line for line in lines if line)
    title = re.sub(r"\s+", " ", parser.title).strip()
    return f"{title}\n\n{body}" if title else body


def web_tools(web: WebSearch, *, max_page_chars: int = 8000) -> list:
    """The `web_search` and `fetch_page` LangChain tools over any `WebSearch`."""

    class SearchArgs(BaseModel):
        query: str = Field(description="What to search the web for.")
        k: int = Field(default=5, ge=1, le=20, description="How many results to return.")

    class FetchArgs(BaseModel):
        url: str = Field(description="The http(s) URL of the page to read.")

    def run_search(query: str, k: int = 5) -> str:
        results = web.search(query, k)
        if not results:
            return f"no web results for {query!r}"
        return "\n\n".join(f"[{n}] {r.title}\n{r.url}\n{r.snippet}" for n, r in enumerate(results, 1))

    def run_fetch(url: str) -> str:
        return truncate(web.fetch(url), max_page_chars)[0]

    return [make_tool(run_search, name="web_search", args_schema=SearchArgs,
                      description="Search the web; returns titles, URLs and snippets."),
            make_tool(run_fetch, name="fetch_page", args_schema=FetchArgs,
                      description="Fetch a web page and return its text.")]
