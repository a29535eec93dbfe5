"""The inspector's guards: the token, the Host header, and cross-site requests.

- Token: with `--token T`, a request needs `Authorization: Bearer T` or the cookie a visit to
  `/?token=T` sets (HttpOnly, SameSite=Strict), so the token leaves the address bar at once.
- Host: a server on loopback answers only requests addressed to a loopback name, so a web page
  whose domain is re-pointed at 127.0.0.1 (DNS rebinding) cannot read the bank through the browser.
- Cross-site edits: a POST must come from this origin (`Sec-Fetch-Site` and `Origin`, when the
  browser sends them) and carry the CSRF token of a form the server rendered.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from memento.ui.config import UIConfig, is_loopback

TOKEN_COOKIE = "memento_ui_token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SAME_SITE_FETCHES = {"same-origin", "none"}
"""`Sec-Fetch-Site` values of a request this origin made, or one the user typed or bookmarked."""


def new_csrf_token() -> str:
    """A fresh secret for the forms of one server run."""
    return secrets.token_urlsafe(32)


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response times do not leak how much of a secret matched."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def host_name(host_header: str) -> str:
    """The name part of a Host header: 'localhost:8765' -> 'localhost', '[::1]:80' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Refusal(Exception):
    """A request the guards turn away, with its status and the reason shown to the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_request(config: UIConfig, request: Any) -> str | None:
    """Refusal for a request the guards turn away; else None, or a URL to redirect to (the token stripped)."""
    host = request.headers.get("host", "")
    if is_loopback(config.host) and not is_loopback(host_name(host)):
        raise Refusal(421, f"this inspector listens on loopback and answers only requests addressed to it, "
                           f"not to host {host!r}; open {config.url}")
    if config.token:
        given = request.query_params.get("token")
        if given is not None and request.method == "GET":
            if not same(given, config.token):
                raise Refusal(401, "the token in the address is wrong; use the one `memento ui` was started with")
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            return request.url.path + (f"?{urlencode(rest)}" if rest else "")
        authorization = request.headers.get("authorization", "")
        bearer = authorization[7:] if authorization.lower().startswith("bearer ") else None
        if not (same(bearer, config.token) or same(request.cookies.get(TOKEN_COOKIE), config.token)):
            raise Refusal(401, "this inspector needs its token: open the address `memento ui` printed "
                               "(…/?token=…), or send `Authorization: Bearer TOKEN`")
    if request.method not in SAFE_METHODS:
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
            raise Refusal(403, f"a {fetch_site} request may not change the bank; edit from the inspector's own pages")
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            raise Refusal(403, f"a request from origin {origin!r} may not change the bank; "
                               f"edit from the inspector's own pages")
    return None


def check_csrf(form: Any, expected: str) -> None:
    """Refusal(403) unless the submitted form carries this server's CSRF token."""
    if not same(form.get(CSRF_FIELD), expected):
        raise Refusal(403, "the form's CSRF token is missing or stale (the server was restarted?); "
                           "reload the page and submit it again")


Middleware = Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


def guard(config: UIConfig, refuse: Callable[[Any, Refusal], Any], redirect: Callable[[str, str | None], Any]) -> Middleware:
    """An HTTP middleware that runs `check_request` before every route."""

    async def middleware(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            target = check_request(config, request)
        except Refusal as refusal:
            return refuse(request, refusal)
        if target is not None:
            return redirect(target, config.token)
        return await call_next(request)

    return middleware
