"""Sending a delivery's SALESmanago upserts: ONE `contact/batchupsert` per `batch_size` keys (a lone key as
`contact/upsert`), and one Result per key. A refused item fails alone: a good record is never dead-lettered for a
bad neighbour, whether SALESmanago refuses the whole call or writes the rest (both readings are handled); a batch
refused without naming an item is sent again one by one; a batch that failed as a whole (transport, throttling,
credentials, server) fails every key, each with only its own item as the request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.errors import CallError, PermanentError
from syncd.logs import get_logger
from syncd.sinks.base import crashed
from syncd.sinks.salesmanago.http import BATCH_UPSERT, SalesmanagoApi
from syncd.sinks.salesmanago.protocol import item_error, request_text, with_request
from syncd.work import Done, Failed, Result

SINK = "salesmanago"


@dataclass(frozen=True, slots=True)
class PlannedUpsert:
    """One key's planned upsert, and what its Done records."""

    key: str
    seqs: tuple[int, ...]
    item: dict[str, Any]
    digest: str | None
    sent: dict[str, Any] | None
    unlink: bool = False
    detail: str = ""
    leftovers: tuple[str, ...] = ()  # e-mails whose contacts go the way of a delete once the upsert is done
    emails: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        contact = self.item["contact"]["email"]
        new = self.item.get("newEmail")
        object.__setattr__(self, "emails", (contact, new) if new else (contact,))

    @property
    def final_email(self) -> str:
        return str(self.emails[-1]).lower()

    def done(self, contact_id: str | None) -> Done:
        return Done(
            self.key,
            self.seqs,
            remote_id=contact_id,
            digest=self.digest,
            sent=self.sent,
            unlink=self.unlink,
            detail=self.detail,
        )


async def send_upserts(api: SalesmanagoApi, upserts: Sequence[PlannedUpsert], batch_size: int) -> dict[str, Result]:
    """Every upsert sent, in chunks of `batch_size`: a Result per key."""
    results: dict[str, Result] = {}
    for start in range(0, len(upserts), batch_size):
        chunk = upserts[start : start + batch_size]
        results.update(await _batch(api, chunk) if len(chunk) > 1 else await _one_by_one(api, chunk))
    return results


async def _one_by_one(api: SalesmanagoApi, upserts: Sequence[PlannedUpsert]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for upsert in upserts:
        try:
            results[upsert.key] = upsert.done(await api.upsert(upsert.item, known=upsert.emails))
        except CallError as exc:
            results[upsert.key] = Failed(upsert.key, upsert.seqs, exc)
        except Exception as exc:  # this key's alone
            results[upsert.key] = crashed(SINK, upsert.key, upsert.seqs, exc)
    return results


async def _batch(api: SalesmanagoApi, upserts: Sequence[PlannedUpsert]) -> dict[str, Result]:
    """ONE `contact/batchupsert` for all; refused items are failed and the others sent again."""
    results: dict[str, Result] = {}
    remaining = list(upserts)
    while len(remaining) > 1:
        try:
            reply = await api.batch_upsert([u.item for u in remaining], [u.emails for u in remaining])
        except PermanentError as exc:
            get_logger(sink=SINK).info("salesmanago_batch_isolating", items=len(remaining), reason=exc.message)
            return results | await _one_by_one(api, remaining)
        except CallError as exc:
            return results | {u.key: Failed(u.key, u.seqs, with_request(exc, _request(api, u))) for u in remaining}
        except Exception:  # one item syncd could not send: send them one by one, so it fails alone
            get_logger(sink=SINK).warning("salesmanago_batch_isolating", items=len(remaining), reason="syncd error")
            return results | await _one_by_one(api, remaining)
        for n, message in reply.refused.items():
            upsert = remaining[n]
            error = item_error(
                BATCH_UPSERT, message, request=_request(api, upsert), response=message, known=upsert.emails
            )
            if reply.status != 200:
                error.http_status = reply.status
            results[upsert.key] = Failed(upsert.key, upsert.seqs, error)
        if reply.success:
            unsure: list[PlannedUpsert] = []
            for n, upsert in enumerate(remaining):
                contact_id = reply.contact_ids.get(upsert.final_email)
                if n in reply.refused:
                    continue
                if contact_id is not None:
                    results[upsert.key] = upsert.done(contact_id)
                else:
                    unsure.append(upsert)
            return results | await _one_by_one(api, unsure)
        remaining = [upsert for n, upsert in enumerate(remaining) if n not in reply.refused]
    return results | await _one_by_one(api, remaining)


def _request(api: SalesmanagoApi, upsert: PlannedUpsert) -> str:
    """The request a key's dead letter keeps: the batch call with only its own item."""
    return request_text(BATCH_UPSERT, {"owner": api.config.owner, "upsertDetails": [api.batch_item(upsert.item)]})
