"""The distribution declares the third-party modules that ModelOpt imports at top level."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
from packaging.requirements import Requirement


def base_requirements() -> set[str]:
    names = set()
    for line in importlib.metadata.requires("nvidia-modelopt") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.add(requirement.name.lower().replace("_", "-"))
    return names


@pytest.mark.parametrize(
    ("distribution", "importer"),
    [
        ("requests", "modelopt.torch.utils.dataset_utils"),
        ("huggingface-hub", "modelopt.torch.export.plugins.hf_checkpoint_utils"),
    ],
)
def test_top_level_imports_are_base_requirements(distribution: str, importer: str) -> None:
    __import__(importer)  # these modules import it unconditionally...
    module = distribution.replace("-", "_")
    assert module in sys.modules
    assert distribution in base_requirements(), (  # ...so plain `pip install` must bring it
        f"{importer} imports {module} at top level, but nvidia-modelopt's METADATA does not "
        "declare it outside an extra"
    )
