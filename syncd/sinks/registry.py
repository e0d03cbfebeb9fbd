"""Building the writer for a configured destination."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from syncd.config import OntraportConfig, SalesmanagoConfig
from syncd.ratelimit import Limiter
from syncd.sinks.base import Lookups, Writer


def build_writer(
    config: SalesmanagoConfig | OntraportConfig,
    *,
    store: Lookups,
    limiter: Limiter,
    streams: Sequence[str],
    clock: Callable[[], float] = time.time,
) -> Writer:
    """The writer for one destination, sharing `limiter` (one per API account)."""
    if isinstance(config, SalesmanagoConfig):
        from syncd.sinks.salesmanago.writer import SalesmanagoWriter

        return SalesmanagoWriter(config, lookups=store, limiter=limiter, streams=streams, clock=clock)
    from syncd.sinks.ontraport.writer import OntraportWriter

    return OntraportWriter(config, lookups=store, limiter=limiter, streams=streams, clock=clock)
