"""Zendesk Sell, the source: Firehose wire formats, normalisation, and the client and poller that read them."""
