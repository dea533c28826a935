"""Container plans, built from the pattern rules in ``patterns/``.

For each role of the mode's pattern:

- ``shared``: one container in both plans (data, feature hub, execution);
- ``expand``: the naive plan has one container per combination for every
  configured role (a strategy container, a classifier container, ...); the
  stateless plan has none when the role is ``stateless`` - it becomes service
  configurations, one per distinct parameter set;
- ``cascade``: one container per combination in both plans (portfolios; in
  the stateless engine they are rows of one portfolio bank).

Example (the seed config, 6 strategy x 4 classifier combinations):
naive 24 + 24 + 24 + 3 = 75 containers, stateless 24 + 3 = 27, 64% fewer.
"""

from __future__ import annotations

import attrs

from patterns import Pattern


@attrs.frozen
class ContainerPlan:
    """Counts of containers by role, and of stateless service configurations."""

    topology: str  # "naive" or "stateless"
    containers: dict[str, int]
    services: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.containers.values())


def build_plans(mode: Pattern, combinations: int, configs: dict[str, int]) -> tuple[ContainerPlan, ContainerPlan]:
    """Naive and stateless plans for ``combinations`` combinations.

    ``configs`` maps role -> number of distinct configurations of that role
    (0 when the config does not use the role, e.g. no classifiers).
    """
    naive: dict[str, int] = {}
    stateless: dict[str, int] = {}
    services: dict[str, int] = {}
    for role in mode.roles:
        used = configs.get(role.name, 1) > 0
        if role.sharing == "shared":
            naive[role.name] = 1
            stateless[role.name] = 1
        elif role.sharing == "cascade":
            naive[role.name] = combinations
            stateless[role.name] = combinations
        elif used:  # expand
            naive[role.name] = combinations
            if role.stateless:
                services[role.name] = configs[role.name]
            else:
                stateless[role.name] = configs[role.name]
    return ContainerPlan("naive", naive, {}), ContainerPlan("stateless", stateless, services)


def reduction(naive: ContainerPlan, stateless: ContainerPlan) -> float:
    """Fraction of containers the stateless plan saves (0.64 for the seed example)."""
    return 0.0 if naive.total == 0 else round(1.0 - stateless.total / naive.total, 6)
