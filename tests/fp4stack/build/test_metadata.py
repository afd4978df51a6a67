"""The dependency fields a repacked wheel takes from the sdist's patched PKG-INFO."""

from __future__ import annotations

import pytest

from fp4stack.build.metadata import MetadataError, dependencies, with_dependencies

WHEEL = (b"Metadata-Version: 2.4\nName: toy\nVersion: 1.0\nRequires-Dist: torch\n"
         b"Provides-Extra: dev\nRequires-Dist: pytest; extra == \"dev\"\nLicense: MIT\n\n"
         b"Requires-Dist: in the description, not a field\n")  # fmt: skip
PKG_INFO = (b"Metadata-Version: 2.4\nName: toy\nVersion: 1.0\nRequires-Dist: torch\n"
            b"Requires-Dist: psutil\nProvides-Extra: dev\n"
            b'Requires-Dist: pytest; extra == "dev"\n\nthe description\n')  # fmt: skip


def test_the_wheel_takes_the_dependency_fields_and_keeps_everything_else():
    carried = with_dependencies(WHEEL, PKG_INFO)
    assert dependencies(carried) == dependencies(PKG_INFO)
    assert b"Requires-Dist: psutil\n" in carried
    assert carried.endswith(b"License: MIT\n\nRequires-Dist: in the description, not a field\n")
    assert with_dependencies(WHEEL, WHEEL) == WHEEL, "no change, no difference"


def test_fields_that_are_not_one_run_cannot_be_carried():
    scattered = WHEEL.replace(b"License: MIT\n", b"").replace(
        b"Provides-Extra: dev\n", b"License: MIT\nProvides-Extra: dev\n"
    )
    with pytest.raises(MetadataError, match="not one run"):
        with_dependencies(scattered, PKG_INFO)
