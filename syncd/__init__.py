"""syncd: carries Zendesk Sell changes to SALESmanago and Ontraport, at least once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("syncd")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

USER_AGENT = f"syncd/{__version__}"
