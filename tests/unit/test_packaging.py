"""Packaging metadata that a fresh install depends on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_and_the_build_backend_understands_it() -> None:
    """`project.license` is the SPDX string (the table form is deprecated and stops building in 2027), and the build
    requires a setuptools that reads it (77 or newer)."""
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    match = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert match is not None and int(match.group(1)) >= 77


def test_the_http_stack_finds_sniffio() -> None:
    """sniffio is a declared dependency and importable: httpcore asks it which event loop runs on every lock it
    creates, and without it every ask is a failed import."""
    assert any(d.startswith("sniffio") for d in PYPROJECT["project"]["dependencies"])
    import sniffio

    assert sniffio.current_async_library  # the function httpcore calls
