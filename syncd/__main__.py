"""`python -m syncd` is the same as the `syncd` console script."""

from syncd.cli import main

raise SystemExit(main())
