"""`memento ui`: a local web inspector for a case bank and its eval runs.

    memento ui --bank cases.db --runs runs/            # http://127.0.0.1:8765/
    memento ui --bank cases.db --policy policy.pt      # the policy's usefulness beside similarity

Pages: the cases (search, filters, pages), a case with what the agent would be shown for a query,
editing, delete and restore (through the bank's trash), merging near-duplicates, the eval runs
(plots, the per-arm table with confidence intervals) and each episode's trace. A JSON API under
`/api/` serves the same data. Every read and edit is a call of the library the CLI makes.

Safe by default: it listens on loopback; any other host needs a token. Edits need the page's
CSRF token and a same-origin request. The web stack (FastAPI, Jinja2, uvicorn) comes with the
extra `memento[ui]` and is imported only when the server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memento.ui.config import UIConfig

if TYPE_CHECKING:
    from memento.bank import CaseBank

__all__ = ["UIConfig", "create_app", "describe", "serve"]


def create_app(config: UIConfig, bank: CaseBank) -> Any:
    """The ASGI app over an open `bank` (the caller keeps it open while the app serves)."""
    return _app_module().create_app(config, bank)


def serve(config: UIConfig) -> None:
    """Open the bank, start the server and serve until interrupted (Ctrl-C)."""
    _app_module().serve(config)


def describe(config: UIConfig) -> dict[str, Any]:
    """What `serve(config)` would serve, after checking the settings, the bank and the web extra; serves nothing."""
    from memento.cli.banks import open_bank
    from memento.ui.runs import RunFolders

    _app_module()
    config.check()
    with open_bank(config.bank, config.embedder) as bank:
        cases = len(bank)
    return {"url": config.url, "bank": config.bank, "cases": cases, "runs": RunFolders(config.runs).names(),
            "policy": str(config.policy) if config.policy else None, "token": bool(config.token)}


def _app_module() -> Any:
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form parser)
        import uvicorn  # noqa: F401
    except ImportError as error:
        from memento.errors import missing_extra

        raise missing_extra(error.name or "fastapi", "ui") from None
    from memento.ui import app

    return app
