"""Fixtures that start real ZooKeeper ensembles (Debian's `zookeeper` package) on loopback.

`zk_ensemble` is started once per run and shared by the tests that leave it intact (each works in a
fleet cluster of its own); tests that kill servers or need their own server config build one with
`make_ensemble`. Every ensemble is torn down (process groups killed) even when a test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.zk_ensemble import Ensemble, zookeeper_available


def _require_zookeeper() -> None:
    if not zookeeper_available():
        pytest.fail("ZooKeeper is not installed: `make deps-debian` installs the zookeeper package and java")


@pytest.fixture(scope="session")
def zk_ensemble() -> Iterator[Ensemble]:
    _require_zookeeper()
    ensemble = Ensemble()
    try:
        ensemble.start()
        yield ensemble
    finally:
        ensemble.close()


@pytest.fixture
def make_ensemble() -> Iterator[Callable[..., Ensemble]]:
    _require_zookeeper()
    made: list[Ensemble] = []

    def make(**kwargs: object) -> Ensemble:
        ensemble = Ensemble(**kwargs)  # type: ignore[arg-type]
        made.append(ensemble)
        return ensemble.start()

    try:
        yield make
    finally:
        for ensemble in made:
            ensemble.close()
