"""Generated MovieLens releases for tests.

A generated folder in a release's layout cannot have the release's rating count or file hashes,
so tests that load one use :func:`generated_releases`: every release as recorded, with its count
and file hashes left out (its scale, layout and zip checksums stay). Verification itself is
tested against the recorded releases.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest

from recsys_rbm.data.releases import RELEASES


@contextlib.contextmanager
def generated_releases() -> Iterator[None]:
    """Within the block, every release accepts a generated folder of any size and content hashes."""
    with pytest.MonkeyPatch.context() as patch:
        for name, release in list(RELEASES.items()):
            patch.setitem(RELEASES, name, dataclasses.replace(release, n_ratings=None, file_sha256={}))
        yield
