"""The error answers of the simulated Ontraport API."""

from __future__ import annotations

from syncd.errors import SyncdError


class ApiError(SyncdError):
    """An API error answer: the HTTP status and the short text the API sends (`Object not found`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
