"""The inspector's ASGI app: FastAPI routes, Jinja2 pages (autoescaped), the guards, and `serve`.

Handlers that touch the bank are plain functions, which FastAPI runs in its thread pool (the bank
and the policy view are safe to share between threads). A MementoError from the library becomes
the page's error message (or `{"error": ...}` under /api/) with status 404 or 400.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from memento.bank import CaseBank
from memento.cli.banks import open_bank
from memento.errors import MementoError, NotFoundError, ValidationError
from memento.ui.config import UIConfig
from memento.ui.inspector import Inspector
from memento.ui.runs import RunFolders
from memento.ui.security import CSRF_FIELD, TOKEN_COOKIE, Refusal, guard, new_csrf_token

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # No page runs a script: even text that escaped the templates could not execute.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chrome sends `Origin: null` with a form, which the guard refuses.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def number(value: Any, digits: int = 3) -> str:
    """A score for a table cell: fixed digits, '—' when there is none."""
    if value is None:
        return "—"
    return f"{float(value):.{digits}f}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def path_part(value: str) -> str:
    """An id inside a URL path: '/' kept (the routes take the rest of the path), everything else quoted."""
    return quote(str(value), safe="/")


def pass_label(row: Any) -> str:
    """'train 2' or 'test', as the report names a pass."""
    return f"train {row.group}" if row.phase == "train" else "test"


def interval(estimate: Any, signed: bool = False) -> str:
    """'0.433 [0.267, 0.600]'; a signed difference is starred when its interval excludes zero (as report.md)."""
    if estimate is None:
        return "—"
    form = "+.3f" if signed else ".3f"
    text = f"{estimate.mean:{form}} [{estimate.low:{form}}, {estimate.high:{form}}]"
    return text + " *" if signed and estimate.excludes_zero else text


def make_templates() -> jinja2.Environment:
    # autoescape=True for every template: a case's text is always shown as text.
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(number=number, pretty_json=pretty_json, path_part=path_part, pass_label=pass_label,
                               interval=interval, namespace=lambda n: "/".join(n))
    return environment


@dataclass
class Context:
    """What every route needs: the settings, the bank operations, the runs, the pages and the CSRF token."""

    config: UIConfig
    inspector: Inspector
    runs: RunFolders
    templates: jinja2.Environment
    csrf: str

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            config=self.config, policy=self.inspector.policy.label, bank=self.inspector.bank.path,
            csrf_field=CSRF_FIELD, csrf=self.csrf, has_runs=self.config.runs is not None, **values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_status(error: MementoError) -> int:
    return 404 if isinstance(error, NotFoundError) else 400


def create_app(config: UIConfig, bank: CaseBank) -> FastAPI:
    """The inspector over an open bank; `config.check()` has passed."""
    from memento.ui import api, pages

    context = Context(config, Inspector(bank, policy=config.policy, page_size=config.page_size, k=config.k),
                      RunFolders(config.runs), make_templates(), new_csrf_token())
    app = FastAPI(title="memento inspector", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context

    def refuse(request: Request, refusal: Refusal, title: str = "Refused") -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=SECURITY_HEADERS)
        return context.page("error.html", refusal.status, message=refusal.message, title=title)

    def redirect(target: str, token: str | None) -> Response:
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(TOKEN_COOKIE, token or "", httponly=True, samesite="strict", path="/")
        return response

    app.middleware("http")(guard(config, refuse, redirect))

    @app.exception_handler(MementoError)
    async def memento_error(request: Request, error: MementoError) -> Response:
        status = error_status(error)
        return refuse(request, Refusal(status, " ".join(str(error).split())), "Not found" if status == 404 else "Error")

    @app.exception_handler(Refusal)
    async def refusal(request: Request, error: Refusal) -> Response:
        return refuse(request, error)

    app.add_api_route("/static/ui.css", lambda: Response((HERE / "static" / "ui.css").read_bytes(),
                                                         media_type="text/css", headers=SECURITY_HEADERS))
    api.add_routes(app, context)
    pages.add_routes(app, context)
    return app


def check_port_free(config: UIConfig) -> None:
    """A ValidationError naming the port when something already listens there (uvicorn would only log it)."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host.strip("[]"), config.port))
        except OSError as error:
            raise ValidationError(f"cannot listen on {config.host} port {config.port} ({error.strerror}); "
                                  f"choose another port with --port, or stop what uses it") from None


def serve(config: UIConfig) -> None:
    """Open the bank, print where the inspector is, and serve until Ctrl-C."""
    config.check()
    check_port_free(config)
    with open_bank(config.bank, config.embedder) as bank:  # a path or a postgresql:// URL, as --bank everywhere
        print("memento ui: loading the embedding model", file=sys.stderr, flush=True)
        bank.embed(["warm-up"])  # the first search would otherwise wait seconds for the model
        app = create_app(config, bank)
        address = config.url + (f"?token={config.token}" if config.token else "")
        server = uvicorn.Server(uvicorn.Config(app, host=config.host.strip("[]"), port=config.port,
                                               log_level="warning", server_header=False))
        # The address is printed once the socket listens, so whoever reads it can connect at once.
        threading.Thread(target=announce, args=(server, f"memento ui: bank {bank.path} at {address} (Ctrl-C to stop)"),
                         daemon=True).start()
        try:
            server.run()
        finally:
            app.state.context.inspector.close()


def announce(server: uvicorn.Server, line: str) -> None:
    """Print `line` on stderr when the server has started."""
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        print(line, file=sys.stderr, flush=True)
