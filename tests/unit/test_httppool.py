"""syncd.httppool: the connection pools of syncd's HTTP clients look each socket up once, and behave as before."""

from __future__ import annotations

import httpx

from syncd.httpclient import absolute_url, bounded_request, make_client
from syncd.httppool import _Backend, _Stream
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread

APP_ID = "2_AppID_12345678"
API_KEY = "Key5678"
HEADERS = {"Api-Key": API_KEY, "Api-Appid": APP_ID}


def _pool_streams(client: httpx.AsyncClient) -> list[object]:
    pool = client._transport._pool  # type: ignore[attr-defined]
    return [conn._connection._network_stream for conn in pool.connections if conn._connection is not None]


async def test_calls_reuse_one_kept_alive_connection_through_the_wrapped_backend() -> None:
    """Sequential calls through make_client's client go over one kept-alive connection of the wrapped backend; an
    idle connection with nothing to read is not taken for expired."""
    with ServerThread(OntraportSandbox(app_id=APP_ID, api_key=API_KEY, rate=None).app) as server:
        client = make_client(server.url, timeout=10.0, headers=HEADERS)
        try:
            assert isinstance(client._transport._pool._network_backend, _Backend)  # type: ignore[attr-defined]
            for _ in range(3):
                response = await bounded_request(client, "Ontraport", "GET", "/1/Contacts/meta")
                assert response.status_code == 200
            streams = _pool_streams(client)
            assert len(streams) == 1 and isinstance(streams[0], _Stream)
            assert streams[0].get_extra_info("is_readable") is False
            assert streams[0].get_extra_info("socket") is not None
        finally:
            await client.aclose()


def test_a_path_is_merged_under_the_base_url_as_httpx_merges_it() -> None:
    """absolute_url gives the URL httpx's own merge of base URL and path gives, base paths and absolute URLs too."""
    for base in ("http://127.0.0.1:8080", "https://api.example.com/v1/", "https://api.example.com/v1"):
        client = httpx.AsyncClient(base_url=base)
        for path in ("/1/Contacts", "1/Contacts/saveorupdate", "/v2/leads/12?x=1", "https://other.example.com/a"):
            assert absolute_url(client.base_url, path) == client.build_request("GET", path).url
