"""The SALESmanago simulator."""
