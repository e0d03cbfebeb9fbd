"""The Ontraport destination: mapping, value conversion, the HTTP layer and the writer."""
