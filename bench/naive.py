"""The naive loop: what a user would write instead of syncd, benchmarked beside it on the same workload.

It reads each person stream (leads, contacts) of the Firehose page by page from where its position file says (the
tail at first) and posts every event, one by one, to both destinations: a SALESmanago `contact/upsert` and an
Ontraport `POST /1/Contacts/saveorupdate`, each as soon as it is read. The position is written to a JSON file after a
page is posted. No queue, no coalescing, no batching, no retries: a call that fails is counted and the event is
dropped; a delete is not carried at all (the loop only upserts what it reads). It stops when every stream is at its
top and prints one JSON line: events read, calls made per destination, failures, seconds.

    python bench/naive.py --sell URL --salesmanago URL --ontraport URL --state FILE [--token T ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

STREAMS = ("leads", "contacts")


def sm_body(data: dict[str, Any], client_id: str, secret: str, owner: str) -> dict[str, Any]:
    """A SALESmanago `contact/upsert` body for one Sell person (signed like the API asks)."""
    api_key = secrets.token_hex(16)
    name = " ".join(p for p in (data.get("first_name"), data.get("last_name") or data.get("name")) if p)
    return {
        "clientId": client_id,
        "apiKey": api_key,
        "sha": hashlib.sha1((api_key + client_id + secret).encode()).hexdigest(),
        "requestTime": int(time.time() * 1000),
        "owner": owner,
        "contact": {"email": data["email"], "name": name or None, "phone": data.get("phone")},
    }


def op_body(data: dict[str, Any]) -> dict[str, Any]:
    """An Ontraport `saveorupdate` body for one Sell person."""
    body = {"email": data["email"], "firstname": data.get("first_name") or data.get("name") or ""}
    body["lastname"] = data.get("last_name") or ""
    if data.get("phone"):
        body["office_phone"] = data["phone"]
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sell", required=True)
    parser.add_argument("--salesmanago", required=True)
    parser.add_argument("--ontraport", required=True)
    parser.add_argument("--state", required=True, type=Path, help="the JSON file holding each stream's position")
    parser.add_argument("--token", default="bench-token")
    parser.add_argument("--client-id", default="bench-client")
    parser.add_argument("--api-secret", default="bench-secret")
    parser.add_argument("--owner", default="owner@example.com")
    parser.add_argument("--app-id", default="bench-app")
    parser.add_argument("--api-key", default="bench-key")
    args = parser.parse_args()
    positions: dict[str, str] = json.loads(args.state.read_text()) if args.state.exists() else {}
    counts = {"events": 0, "salesmanago_calls": 0, "ontraport_calls": 0, "failed": 0, "deletes_dropped": 0}
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {args.token}", "User-Agent": "naive-loop/1"}
    op_headers = {"Api-Key": args.api_key, "Api-Appid": args.app_id}
    with httpx.Client(timeout=30) as http:
        for stream in STREAMS:
            while True:
                page = http.get(
                    f"{args.sell}/v3/{stream}/stream",
                    params={"position": positions.get(stream, "tail"), "limit": 100},
                    headers=headers,
                ).json()
                for item in page["items"]:
                    counts["events"] += 1
                    data = item["data"]
                    if item["meta"]["event_type"] == "deleted" or not data.get("email"):
                        counts["deletes_dropped"] += item["meta"]["event_type"] == "deleted"
                        continue
                    sm = http.post(
                        f"{args.salesmanago}/api/contact/upsert",
                        json=sm_body(data, args.client_id, args.api_secret, args.owner),
                    )
                    counts["salesmanago_calls"] += 1
                    counts["failed"] += sm.status_code != 200 or not sm.json().get("success")
                    op = http.post(f"{args.ontraport}/1/Contacts/saveorupdate", json=op_body(data), headers=op_headers)
                    counts["ontraport_calls"] += 1
                    counts["failed"] += op.status_code != 200
                positions[stream] = page["meta"]["position"]
                args.state.write_text(json.dumps(positions))
                if page["meta"]["top"]:
                    break
    print(json.dumps({**counts, "seconds": round(time.perf_counter() - started, 3)}), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
