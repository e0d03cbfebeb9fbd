"""The SALESmanago destination: mapping, the HTTP layer and the writer."""
