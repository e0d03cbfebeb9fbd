"""Faithful simulators of the Zendesk Sell, SALESmanago and Ontraport APIs, as ASGI servers on loopback."""
