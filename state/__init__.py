"""The durable store: one SQLite file holding positions, events, the shadow, deliveries and links."""

from state.db import SCHEMA_VERSION, open_database
from state.store import Store

__all__ = ["SCHEMA_VERSION", "Store", "open_database"]
