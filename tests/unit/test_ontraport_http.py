"""Reading Ontraport's refusals (syncd.sinks.ontraport.http): which of them say a record does not exist."""

from __future__ import annotations

import pytest

from syncd.sinks.ontraport.http import is_not_found


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (404, "Object not found", True),  # since 2022
        (400, "Object not found", True),  # getByEmail before 2022
        (422, "object not found", True),  # the text counts, whatever the 4xx
        (404, "Object not found.", True),
        (404, "Not Found", False),  # a proxy's page for a wrong base URL says nothing about a record
        (404, "<html><head><title>404 Not Found</title></head></html>", False),
        (400, "Invalid query", False),
        (400, "Invalid Contact ID", False),
        (401, "Object not found", False),  # credentials, throttling and timeouts are never about a record
        (403, "Object not found", False),
        (429, "Object not found", False),
        (408, "Object not found", False),
        (500, "Object not found", False),  # a server error is retried, whatever it says
        (200, "Object not found", False),
    ],
)
def test_object_not_found_is_read_from_the_text_on_any_4xx(status: int, detail: str, expected: bool) -> None:
    """`Object not found` means the record is gone on any 4xx (404 now, 400 before 2022), never by status alone."""
    assert is_not_found(status, detail) is expected
