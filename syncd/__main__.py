"""`python -m syncd` is the same as the `syncd` console script."""

from syncd.commands.cli import main

raise SystemExit(main())
