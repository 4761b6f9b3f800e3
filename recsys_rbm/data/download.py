"""Downloading a file with a progress callback, atomically, verified before it is kept."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from recsys_rbm.errors import DataError
from recsys_rbm.io.atomic import atomic_path

# progress(bytes_done, bytes_total_or_None, description)
ProgressCallback = Callable[[int, int | None, str], None]


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    urls: Sequence[str],
    destination: Path,
    verify: Callable[[Path], None] | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch the first URL that works into ``destination``; ``verify`` may raise :class:`DataError`.

    The file appears at ``destination`` only once it is complete and verified; a failed or
    interrupted download leaves nothing behind.
    """
    errors = []
    for url in urls:
        try:
            with atomic_path(destination) as temporary:
                with urllib.request.urlopen(url, timeout=timeout) as response, temporary.open("wb") as out:
                    total = response.headers.get("Content-Length")
                    total_bytes = int(total) if total and total.isdigit() else None
                    done = 0
                    while block := response.read(1 << 16):
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total_bytes, destination.name)
                if verify is not None:
                    verify(temporary)
            return destination
        except (urllib.error.URLError, OSError, ValueError) as error:
            errors.append(f"{url}: {error}")
        except DataError as error:
            errors.append(f"{url}: {error}")
    raise DataError(f"could not download {destination.name} ({'; '.join(errors)})")
