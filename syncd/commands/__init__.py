"""The `syncd` command line: one module per command, registered in one place (syncd.commands.cli)."""
