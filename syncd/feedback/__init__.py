"""Outcomes back to Sell: each lead's and contact's outcome in the destinations written on the Sell record (tags,
and a custom field with the latest status), through a queue of its own in the store."""
