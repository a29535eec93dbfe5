"""What `memento ui` serves and how: the bank, the runs folder, the policy, the address and the token."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from memento.errors import NotFoundError, ValidationError

LOOPBACK_NAMES = ("localhost",)
MIN_TOKEN_CHARS = 16
MAKE_TOKEN = "python -c \"import secrets; print(secrets.token_urlsafe())\""


@dataclass(frozen=True)
class UIConfig:
    """Settings of one inspector server; `check()` refuses an unsafe or impossible one."""

    bank: str
    """The bank to inspect and edit (a path or a postgresql:// URL, as `--bank` everywhere)."""
    runs: Path | None = None
    """A run folder, or a folder of run folders, written by `memento eval run`."""
    policy: Path | None = None
    """A policy checkpoint: its usefulness scores and its choice of cases (default: similarity)."""
    embedder: str | None = None
    """The bank's embedding model, as `--embedder` (default: the packaged all-MiniLM-L6-v2)."""
    host: str = "127.0.0.1"
    """The address to listen on; anything but loopback needs a token."""
    port: int = 8765
    token: str | None = None
    """When set, every request must carry it (a cookie set from `?token=`, or `Authorization: Bearer`)."""
    page_size: int = 25
    """Cases or episodes per page."""
    k: int = 4
    """How many cases the agent is shown (`memento ask -k`), for "what would the agent be shown"."""

    def check(self) -> UIConfig:
        """Raise a MementoError naming the setting and the fix when the server must not start."""
        if not is_loopback(self.host) and not self.token:
            raise ValidationError(
                f"--host {self.host} is not a loopback address, so anyone who can reach it could read and edit the "
                f"bank; give a token (--token, at least {MIN_TOKEN_CHARS} characters, e.g. from `{MAKE_TOKEN}`) "
                f"or listen on 127.0.0.1")
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ValidationError(f"--token has {len(self.token)} characters, fewer than {MIN_TOKEN_CHARS}; "
                                  f"use a longer one, e.g. from `{MAKE_TOKEN}`")
        if not 0 < self.port < 65536:
            raise ValidationError(f"--port {self.port} is not a TCP port; give one from 1 to 65535, e.g. 8765")
        if self.runs is not None and not Path(self.runs).is_dir():
            raise NotFoundError(f"--runs '{self.runs}' is not a folder; give a run folder of `memento eval run` "
                                f"(or the folder that holds several)")
        if self.policy is not None and not Path(self.policy).is_file():
            raise NotFoundError(f"--policy '{self.policy}' does not exist; give a checkpoint written by policy.save()")
        for name, value in (("page_size", self.page_size), ("k", self.k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}={value!r} must be a positive whole number")
        return self

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or 'localhost') only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
