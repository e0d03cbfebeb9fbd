"""The Ontraport simulator."""
