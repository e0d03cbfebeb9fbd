"""The error answers of the simulated Ontraport API."""

from __future__ import annotations

from syncd.errors import SyncdError


class ApiError(SyncdError):
    """An API error answer: the HTTP status and the short text the API sends (`Object not found`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


NOT_FOUND = "Object not found"


class NotFound(ApiError):
    """An unknown record (`Object not found`): 404 today, 400 before 2022 (the sandbox's `not_found_status`)."""

    def __init__(self) -> None:
        super().__init__(404, NOT_FOUND)
