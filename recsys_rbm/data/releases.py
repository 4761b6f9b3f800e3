"""MovieLens releases: what each one is, where it lives, how it is fetched, and how it is verified.

A release lives in the data directory (``--data-dir``, else ``$RBM_REC_DATA``, else ``data/``)
either as the extracted folder GroupLens ships inside the zip (``data/ml-100k/u.data``) or as the
zip itself (``data/ml-100k.zip``), read member by member without extracting it. A missing release
is downloaded from GroupLens and kept only once its size and checksums match the values recorded
in :data:`RELEASES`; a zip already in the folder is trusted as far as the zip's own CRCs go.

What is known of each release is checked after reading it (see
:mod:`recsys_rbm.data.movielens`): its rating scale (a rating of 7 in ml-100k is an error, not a
sixth level), its number of ratings (a cut ``u.data`` is an error, not half the data), and, where
recorded, the SHA-256 of its files (extracted or inside the zip). File hashes are remembered in
the data directory by path, size and modification time (:mod:`recsys_rbm.data.fingerprint`).

Three layouts cover every release:

- ``"100k"``: ml-100k. ``u.data`` is ``user<TAB>item<TAB>rating<TAB>timestamp``; ``u.item`` is
  ``|``-separated Latin-1 (id, title, release date, video release date, IMDb URL, one 0/1 flag
  per genre) and ``u.genre`` names the flags in order (``Action|1``).
- ``"dat"``: ml-1m and ml-10m. ``ratings.dat`` is ``user::movie::rating::timestamp``;
  ``movies.dat`` is ``id::title::Genre|Genre``.
- ``"csv"``: ml-20m, ml-25m, ml-32m and ml-latest-small. ``ratings.csv`` has the header
  ``userId,movieId,rating,timestamp`` (half-star ratings); ``movies.csv`` has
  ``movieId,title,genres`` with titles quoted when they contain commas.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from recsys_rbm.data.fingerprint import CACHE_NAME, files_sha256
from recsys_rbm.data.paths import resolve_data_dir
from recsys_rbm.data.scale import RatingScale
from recsys_rbm.errors import DataError

if TYPE_CHECKING:
    from recsys_rbm.data.download import ProgressCallback

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"

Layout = Literal["100k", "dat", "csv"]

WHOLE_STARS = (1.0, 2.0, 3.0, 4.0, 5.0)
HALF_STARS = tuple(k / 2 for k in range(1, 11))  # 0.5, 1.0, …, 5.0


@dataclass(frozen=True)
class Release:
    """One MovieLens release: where to get it, how to check it, and how its files are laid out.

    Tests substitute their own (``dataclasses.replace(RELEASES["ml-100k"], url="file://…",
    md5=…)``, or ``n_ratings=None, file_sha256={}`` for a generated folder) rather than switching
    verification off.
    """

    name: str  # what users type, and the zip's name without ".zip": "ml-100k"
    folder: str  # the folder inside the zip; ml-10m's is "ml-10M100K"
    layout: Layout  # "100k" (u.data, u.item, u.genre), "dat" ("::"-separated) or "csv" (with a header)
    ratings_file: str  # inside ``folder``
    movies_file: str  # inside ``folder``
    separator: str  # field separator of the ratings file: "\t", "::" or ","
    encoding: str  # documented encoding of the movies file; UTF-8 is tried first, line by line
    md5: str | None  # of the zip, as GroupLens publishes it in <name>.zip.md5
    sha256: str | None  # of the zip
    size: int | None  # bytes of the zip
    n_ratings: int | None  # lines of the ratings file, as the release's README gives it; None: not fixed
    scale: tuple[float, ...] = WHOLE_STARS  # the rating values the release uses
    file_sha256: Mapping[str, str] = field(default_factory=dict, hash=False)  # file name -> sha256, where known
    url: str = ""  # empty: GROUPLENS_URL + <name>.zip

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", f"{GROUPLENS_URL}{self.name}.zip")
        if self.md5 is None and self.sha256 is None:
            raise ValueError(f"release {self.name} needs at least one checksum")
        object.__setattr__(self, "file_sha256", MappingProxyType(dict(self.file_sha256)))

    @property
    def zip_name(self) -> str:
        return f"{self.name}.zip"

    @property
    def has_header(self) -> bool:
        return self.layout == "csv"

    @property
    def rating_scale(self) -> RatingScale:
        return RatingScale.of_release(self.scale, self.name)


# Checksums of the release zips, and where each value comes from. None of the zips is on this
# machine, so no zip checksum could be verified here. Sources:
# - md5: the <name>.zip.md5 files GroupLens publishes beside each zip, as quoted (with the .md5
#   URL) by several independent projects; ml-100k, ml-1m, ml-10m, ml-20m, ml-25m and ml-32m each
#   agree across at least three of them. GroupLens publishes one for ml-latest-small too, but it
#   changes whenever that "latest" release is regenerated, and no stable quote of it was found.
# - sha256 and size: TensorFlow Datasets' url_checksums/movielens.txt for ml-100k, ml-1m, ml-20m,
#   ml-25m and ml-latest-small (the 2018-09-26 generation: 610 users, 100,836 ratings); for ml-10m
#   and ml-32m, projects that record the archive's SHA-256 and size beside the GroupLens MD5
#   (the ml-32m size, 238,950,008 bytes, is quoted by two of them).
#
# Rating counts and scales. ml-100k's were checked here against its README ("100,000 ratings
# (1-5) from 943 users on 1682 movies") and u.info ("100000 ratings"). The others are not on this
# machine; their figures are those their READMEs state, as recalled rather than re-read here:
# ml-1m 1,000,209 ratings, whole stars 1-5; ml-10m 10,000,054, ml-20m 20,000,263, ml-25m 25,000,095
# and ml-32m 32,000,204, half stars 0.5-5.0. ml-latest-small changes whenever GroupLens
# regenerates it (the 2018-09-26 generation has 100,836 ratings), so its count is not checked.
#
# File hashes: the SHA-256 of every file of the extracted ml-100k folder in ../shared/data, an
# unmodified copy of the release (its two helper scripts, allbut.pl and mku.sh, are not there and
# not recorded). No other release's files are on this machine, so none are recorded for them.
ML_100K_FILES = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d4cbfa55764b97855a9451d9c1fa59f6968334e10d1da91af5ff338ea7106fc3",
}

# Files, ratings separator and movie-file encoding of each layout.
_LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "100k": ("u.data", "u.item", "\t", "latin-1"),
    "dat": ("ratings.dat", "movies.dat", "::", "latin-1"),
    "csv": ("ratings.csv", "movies.csv", ",", "utf-8"),
}


def _release(
    name: str,
    folder: str,
    layout: Layout,
    md5: str | None,
    sha256: str,
    size: int,
    n_ratings: int | None,
    scale: tuple[float, ...],
    file_sha256: Mapping[str, str] | None = None,
) -> Release:
    ratings_file, movies_file, separator, encoding = _LAYOUTS[layout]
    return Release(
        name, folder, layout, ratings_file, movies_file, separator, encoding, md5, sha256, size, n_ratings, scale,
        file_sha256 or {},
    )  # fmt: skip


# fmt: off
RELEASES: dict[str, Release] = {
    release.name: release
    for release in (
        _release("ml-100k", "ml-100k", "100k", "0e33842e24a9c977be4e0107933c0723",
                 "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4_924_029, 100_000,
                 WHOLE_STARS, ML_100K_FILES),
        _release("ml-1m", "ml-1m", "dat", "c4d9eecfca2ab87c1945afe126590906",
                 "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5_917_549, 1_000_209,
                 WHOLE_STARS),
        _release("ml-10m", "ml-10M100K", "dat", "ce571fd55effeba0271552578f2648bd",
                 "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", 65_566_137, 10_000_054,
                 HALF_STARS),
        _release("ml-20m", "ml-20m", "csv", "cd245b17a1ae2cc31bb14903e1204af3",
                 "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198_702_078, 20_000_263,
                 HALF_STARS),
        _release("ml-25m", "ml-25m", "csv", "6b51fb2759a8657d3bfcbfc42b592ada",
                 "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261_978_986, 25_000_095,
                 HALF_STARS),
        _release("ml-32m", "ml-32m", "csv", "d472be332d4daa821edc399621853b57",
                 "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee", 238_950_008, 32_000_204,
                 HALF_STARS),
        _release("ml-latest-small", "ml-latest-small", "csv", None,
                 "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978_202, None,
                 HALF_STARS),
    )
}
# fmt: on


def get_release(release: str | Release) -> Release:
    """The :class:`Release` named ``release`` (a :class:`Release` is returned as it is)."""
    if isinstance(release, Release):
        return release
    try:
        return RELEASES[release]
    except KeyError:
        raise DataError(f"unknown MovieLens release {release!r}; known: {', '.join(RELEASES)}") from None


# ---------------------------------------------------------------------------------------------
# Finding, downloading and reading a release's files


@dataclass(frozen=True)
class ReleaseFiles:
    """A release's files as found on disk: in an extracted folder, or inside the release zip."""

    release: Release
    path: Path  # the folder holding u.data / ratings.csv …, or the zip

    @property
    def is_zip(self) -> bool:
        return self.path.suffix == ".zip"

    @property
    def hash_cache(self) -> Path:
        """Where file hashes are remembered: in the folder that holds the release folder or zip."""
        return self.path.parent / CACHE_NAME

    def _member(self, name: str) -> str | None:
        """The zip member for ``name``: ``<folder>/<name>``, else the one member ending in ``/<name>``."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise self._corrupt(error) from None
        expected = f"{self.release.folder}/{name}"
        if expected in names:
            return expected
        matches = [member for member in names if member == name or member.endswith("/" + name)]
        return matches[0] if len(matches) == 1 else None

    def has(self, name: str) -> bool:
        """Whether the release holds the file ``name`` (e.g. ``"u1.base"``)."""
        if self.is_zip:
            return self._member(name) is not None
        return (self.path / name).is_file()

    def describe(self, name: str) -> str:
        """How messages name a file: ``/data/ml-100k/u.data`` or ``/data/ml-100k.zip:ml-100k/u.data``."""
        if self.is_zip:
            return f"{self.path}:{self._member(name) or f'{self.release.folder}/{name}'}"
        return str(self.path / name)

    def local_path(self, name: str) -> Path | None:
        """The file's own path when it lies in a folder (None inside a zip)."""
        return None if self.is_zip else self.path / name

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes; a missing file or a corrupt zip is a :class:`DataError`."""
        if not self.is_zip:
            try:
                return (self.path / name).read_bytes()
            except FileNotFoundError:
                raise self.missing(name) from None
        member = self._member(name)
        if member is None:
            raise DataError(f"{self.path} has no {self.release.folder}/{name}; is it the {self.release.name} zip?")
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError) as error:
            raise self._corrupt(error) from None

    def missing(self, name: str) -> DataError:
        return DataError(f"{self.path / name} is missing; the {self.release.name} folder is incomplete")

    def sha256(self, name: str, data: bytes | None = None) -> str:
        """SHA-256 of a file: of ``data`` when given (its bytes, already read), else remembered or computed."""
        if data is not None:
            return hashlib.sha256(data).hexdigest()
        local = self.local_path(name)
        if local is None:
            return hashlib.sha256(self.read_bytes(name)).hexdigest()
        if not local.is_file():
            raise self.missing(name)
        return files_sha256([local], self.hash_cache)[local]

    def verify(self, names: Iterable[str], read: Mapping[str, bytes] | None = None) -> None:
        """Check files against the SHA-256 recorded for this release (files without a record pass).

        ``read`` gives the bytes of files already in memory. A mismatch is a one-line
        :class:`DataError` naming the file and saying to re-download or delete it.
        """
        recorded = self.release.file_sha256
        names = [name for name in names if name in recorded]
        local = {name: self.local_path(name) for name in names if (read is None or name not in read)}
        paths = [path for path in local.values() if path is not None]
        for path in paths:
            if not path.is_file():
                raise self.missing(path.name)
        known = files_sha256(paths, self.hash_cache) if paths else {}
        for name in names:
            path = local.get(name)
            if read is not None and name in read:
                digest = hashlib.sha256(read[name]).hexdigest()
            elif path is not None:
                digest = known[path]
            else:
                digest = hashlib.sha256(self.read_bytes(name)).hexdigest()
            if digest != recorded[name]:
                raise self.not_original(name, digest)

    def not_original(self, name: str, digest: str) -> DataError:
        """The error for a file whose SHA-256 differs from the recorded one."""
        expected = self.release.file_sha256.get(name, "")
        return DataError(
            f"{self.describe(name)} is not the {self.release.name} original (sha256 {digest[:12]}…, expected "
            f"{expected[:12]}…); re-download it, or delete {self.path} to download a fresh copy"
        )

    def _corrupt(self, error: Exception) -> DataError:
        return DataError(
            f"{self.path} is corrupt ({error}); delete it to download a fresh copy, "
            f"or put the extracted {self.release.folder}/ folder beside it"
        )


def _folder_candidates(release: Release, directory: Path) -> list[Path]:
    candidates = [directory / release.folder, directory / release.name]
    if directory.name in (release.folder, release.name):  # --data-dir pointed at the release folder itself
        candidates.append(directory)
    return list(dict.fromkeys(candidates))


def locate_release(release: str | Release, data_dir: str | Path | None = None) -> ReleaseFiles | None:
    """Where ``release`` is in the data directory, or None: the extracted folder first, then the zip."""
    release = get_release(release)
    directory = resolve_data_dir(data_dir)
    for folder in _folder_candidates(release, directory):
        if (folder / release.ratings_file).is_file():
            return ReleaseFiles(release, folder)
    archive = directory / release.zip_name
    if archive.is_file():
        return ReleaseFiles(release, archive)
    return None


def placement_instructions(release: str | Release, data_dir: str | Path | None = None) -> str:
    """What to put where for ``release`` to be found offline (part of every missing-data message)."""
    release = get_release(release)
    directory = resolve_data_dir(data_dir).resolve()
    return (
        f"put {release.zip_name} (from {release.url}) or the extracted {release.folder}/ folder in {directory}, "
        f"or point --data-dir or RBM_REC_DATA at the folder that holds it"
    )


def verify_release_zip(release: str | Release, path: str | Path) -> None:
    """Check a downloaded zip against the size and checksums recorded for ``release``.

    Raises :class:`DataError` on the first mismatch; each recorded value is checked, so one
    corrupt byte or a changed upstream file is caught whichever checksum is known.
    """
    release = get_release(release)
    path = Path(path)
    size = path.stat().st_size
    if release.size is not None and size != release.size:
        raise DataError(f"{release.zip_name} has {size:,} bytes, expected {release.size:,} (incomplete or changed)")
    for algorithm, expected in (("md5", release.md5), ("sha256", release.sha256)):
        if expected is None:
            continue
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, algorithm).hexdigest()
        if digest != expected:
            raise DataError(
                f"{release.zip_name} has {algorithm} {digest}, expected {expected} (corrupt, or changed upstream)"
            )


def download_release(
    release: str | Release,
    data_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``release``'s zip into the data directory, verified; returns its path.

    The zip appears only once complete and verified (:func:`recsys_rbm.data.download.download`
    writes to a temporary file beside it); a failure raises :class:`DataError` and leaves nothing.
    """
    from recsys_rbm.data import download as downloading  # urllib is only needed here

    release = get_release(release)
    destination = resolve_data_dir(data_dir) / release.zip_name
    return downloading.download(
        [release.url], destination, verify=lambda temporary: verify_release_zip(release, temporary), progress=progress
    )


def open_release(
    release: str | Release = "ml-100k",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> ReleaseFiles:
    """The files of ``release``: found in the data directory, else downloaded when ``download`` is true.

    When the release is missing and cannot be downloaded (offline, or ``download=False``), the
    :class:`DataError` says exactly what to place where.
    """
    release = get_release(release)
    found = locate_release(release, data_dir)
    if found is not None:
        return found
    directory = resolve_data_dir(data_dir).resolve()
    if not download:
        raise DataError(
            f"MovieLens {release.name} is not in {directory} and downloading is off; "
            f"{placement_instructions(release, data_dir)}"
        )
    try:
        archive = download_release(release, data_dir, progress)
    except DataError as error:
        reason = " ".join(str(error).split())  # keep the message on one line
        raise DataError(
            f"MovieLens {release.name} is not in {directory} and {reason}; {placement_instructions(release, data_dir)}"
        ) from None
    return ReleaseFiles(release, archive)
