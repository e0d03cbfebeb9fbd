"""`python -m syncd` is the same as the `syncd` console script."""

from syncd.entry import main

raise SystemExit(main())
