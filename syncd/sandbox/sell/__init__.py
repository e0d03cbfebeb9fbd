"""The Zendesk Sell simulator: Firehose streams, the Core API v2, and the history generator."""
