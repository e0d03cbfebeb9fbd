"""syncd: carries Zendesk Sell changes to SALESmanago and Ontraport, at least once.

`__version__` and `USER_AGENT` are looked up when first asked for (reading the installed metadata costs tens of
milliseconds, which `syncd run` should not spend before it handles its first signal).
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("syncd")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name == "USER_AGENT":
        return f"syncd/{_version()}"
    raise AttributeError(f"module 'syncd' has no attribute {name!r}")
