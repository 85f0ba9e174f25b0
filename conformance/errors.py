"""What can go wrong on the way to a verdict, as types: the judge decides by type, never by text.

A check's own ``AssertionError`` (and ``dicomweb.ProtocolError``, a malformed answer) is a FAIL of
the rule. These are not: they say that no verdict on the rule could be formed.
"""

from __future__ import annotations


class NoAnswer(Exception):
    """No complete answer arrived: refused, reset or cut short on the way (verdict ERROR).

    ``kind`` says where it broke (``client.no_answer_kind``): "plain" (https:// to a port without
    TLS), "certificate" (not verified), "tls" (the handshake otherwise), "dns" (the host name
    does not resolve), "refused" (nothing listens on the port), "connect" (no connection
    otherwise), "broken" (the answer broke off), "deadline" (see DeadlineExceeded).
    """

    def __init__(self, message: str, kind: str = "broken") -> None:
        super().__init__(message)
        self.kind = kind


class DeadlineExceeded(NoAnswer):
    """The answer did not arrive in full before a deadline: the request's, the check's or the
    run's (verdict ERROR)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "deadline")


class ClosedWhileIdle(NoAnswer):
    """A read sent on a connection kept open from an earlier exchange, closed before any answer:
    the server closed it while idle, as it may at any time (RFC 9112 9.5), and the request
    crossed the close on the way. Asked again on another connection (RFC 9112 9.3.1: a client
    may retry a request whose method is idempotent); raised only once that fails too."""


class Throttled(Exception):
    """The server kept answering 429 or 503 past the retries it was given (verdict ERROR)."""


class UnsafeRequestError(Exception):
    """A request that could change data this run did not create: it was not sent (ERROR)."""


class ReadOnlyError(UnsafeRequestError):
    """A request that would write, in a read-only run: it was not sent (verdict DISABLED)."""


class BudgetSpent(Exception):
    """The run's read budget (--dicomweb-read-budget) is spent: the request was not sent, or its
    answer not read further. The check is not judged (verdict DISABLED), nor any later one that
    asks the server."""
