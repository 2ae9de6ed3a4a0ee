"""The base of every anticipated error in creditfactory.

Each domain defines its own errors next to the code that raises them, as subclasses of
:class:`DomainError` with a stable ``code`` and an HTTP status hint. The API maps them to
problem-details JSON in one handler; the CLI prints ``message`` and exits non-zero.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """An error the system expects and can explain to a user."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    title: ClassVar[str] = "Request could not be processed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://creditfactory.dev/problems/{self.code}",
            "title": self.title,
            "status": self.http_status,
            "code": self.code,
            "detail": self.message,
        }
        if self.details:
            body["details"] = self.details
        return body


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
    title = "Conflict"


class PermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403
    title = "Permission denied"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    http_status = 401
    title = "Authentication required"


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422
    title = "Invalid input"
