"""``prove``: each chosen line's patches, their tests red on pristine code and green patched.

Each line's test env is built as for ``make test`` (``testing.suites.upstream_env``: the
series applied, the patched wheel installed); ``testing.prove`` runs the tests in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fp4stack.stack.pins import Project
from fp4stack.testing import suites
from fp4stack.testing.prove import PatchProof, prove


@dataclass(frozen=True)
class ProveRun:
    """One proof per patch of every line proved, in order."""

    proofs: list[PatchProof]

    @property
    def proven(self) -> bool:
        """True when every patch is proven (and when there is none to prove)."""
        return all(p.proven for p in self.proofs)


def prove_lines(project: Project, names: Sequence[str]) -> ProveRun:
    """Prove the patches of each line named (lines or upstreams; none: all).

    :raises EnvError: a test env cannot be built.
    """
    proofs: list[PatchProof] = []
    for line in project.select(list(names)):
        proofs += prove(project, line, suites.upstream_env(project, line))
    return ProveRun(proofs)
