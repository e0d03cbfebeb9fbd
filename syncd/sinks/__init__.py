"""Destinations: a pure mapper and an HTTP writer for each of SALESmanago and Ontraport."""
