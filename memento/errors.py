"""Every error memento raises on purpose derives from one class.

    MementoError
    ├── ValidationError        a value breaks a rule (empty task, non-finite reward, bad field)
    │   └── ImportFormatError  a JSONL line that is not a valid case (carries the line number)
    ├── NotFoundError          a case id, bank file or checkpoint that is not there
    ├── BankError              a file that is not a bank, or a bank that cannot be opened as asked
    │   └── EmbedderMismatchError  the bank was built with another embedding model or dimension
    ├── PolicyError            a policy checkpoint that does not match, or a policy used wrongly
    ├── LLMError               a model backend failed
    │   ├── LLMConnectionError the endpoint is down or went away mid-request
    │   ├── LLMTimeoutError    no answer within the timeout
    │   ├── LLMResponseError   the endpoint answered with an error status or garbage
    │   └── StructuredOutputError  the model's output did not match the schema, even after a repair
    ├── MissingExtraError      an optional dependency is not installed (names the extra)
    ├── ToolError              a tool could not run (the sandbox, a file reader, a search index)
    │   └── WebError           a web search or page fetch failed
    │       ├── WebTimeoutError     no answer within the timeout
    │       ├── WebConnectionError  the service could not be reached
    │       └── WebResponseError    an error status, or a body that cannot be used
    └── DataError              an eval data file is missing or malformed

Messages name the value, the rule it broke and how to fix it, because the CLI shows them as they are.
"""

from __future__ import annotations


class MementoError(Exception):
    """Base class of every error memento raises on purpose."""


class ValidationError(MementoError, ValueError):
    """A value breaks a rule: the message names the value, the rule and the fix."""


class ImportFormatError(ValidationError):
    """A line of an import file is not a valid case."""

    def __init__(self, message: str, line_number: int | None = None):
        super().__init__(message)
        self.line_number = line_number


class NotFoundError(MementoError, KeyError):
    """A case id, file or checkpoint that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BankError(MementoError):
    """A file that is not a case bank, or a bank that cannot be opened as asked."""


class EmbedderMismatchError(BankError):
    """The bank was created with another embedding model or dimension."""


class PolicyError(MementoError):
    """A policy checkpoint that does not match, or a policy used in a way it cannot be."""


class LLMError(MementoError):
    """A model backend failed."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached, or dropped the connection mid-request."""


class LLMTimeoutError(LLMError):
    """The endpoint gave no answer within the timeout."""


class LLMResponseError(LLMError):
    """The endpoint answered with an error status or a body that is not a completion."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class StructuredOutputError(LLMError):
    """The model's output did not validate against the schema, even after one repair try."""


class MissingExtraError(MementoError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ToolError(MementoError):
    """A tool could not run: the sandbox, a file reader, a search index, a web adapter."""


class WebError(ToolError):
    """A web search or page fetch failed."""


class WebTimeoutError(WebError):
    """The service gave no answer within the timeout."""


class WebConnectionError(WebError):
    """The service could not be reached."""


class WebResponseError(WebError):
    """The service answered with an error status, or with a body that cannot be used."""


class DataError(MementoError):
    """An eval data file is missing or malformed."""


def missing_extra(package: str, extra: str) -> MissingExtraError:
    """The error to raise when an optional import fails."""
    return MissingExtraError(
        f"{package!r} is not installed; it is needed here and comes with the extra "
        f"'memento[{extra}]': pip install 'memento[{extra}]'"
    )
