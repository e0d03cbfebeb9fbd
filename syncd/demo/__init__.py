"""`syncd demo`: the whole pipeline against the built-in simulators, with a live view and a summary."""
