"""Text files as the readers need them: decompressed, decoded to UTF-8, or refused for what they are.

A ratings file handed over as ``ratings.csv.gz``, saved as UTF-16 by a spreadsheet, or not text
at all would otherwise be parsed as CSV and reported as dozens of "bad rows". :func:`read_text_file`
looks at the bytes first:

- **compressed**: gzip, bzip2 and xz (by their magic bytes, whatever the name) are decompressed;
  zip, zstd and 7z archives are refused with what to do (unpack them);
- **encodings**: UTF-8 (with or without a byte-order mark), UTF-16 and UTF-32 with a byte-order
  mark are read; UTF-16 without one is named as such; other bytes are read as Latin-1, as before;
- **not text**: NUL bytes or many control characters mean binary data (a Parquet file under
  another name is named as one).

Every refusal is one :class:`DataError` line naming the file.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import zlib
from dataclasses import dataclass
from pathlib import Path

from recsys_rbm.errors import DataError
from recsys_rbm.io.inputs import read_regular_bytes


def _is_gzip(data: bytes) -> bool:
    return data.startswith(b"\x1f\x8b")


def _is_bzip2(data: bytes) -> bool:  # "BZh", the block size digit, then the first block's magic (pi's digits)
    return data[:3] == b"BZh" and data[3:4] in b"123456789" and data[4:10] in (b"1AY&SY", b"\x17rE8P\x90")


def _is_xz(data: bytes) -> bool:
    return data.startswith(b"\xfd7zXZ\x00")


def _is_parquet(data: bytes) -> bool:
    return data.startswith(b"PAR1") and data.endswith(b"PAR1")


COMPRESSED = (  # (recognised by, name, how to decompress)
    (_is_gzip, "gzip", gzip.decompress),
    (_is_bzip2, "bzip2", bz2.decompress),
    (_is_xz, "xz", lzma.decompress),
)
ARCHIVES = (  # (recognised by, what it is, what to do)
    (lambda data: data.startswith(b"PK\x03\x04"), "a zip archive", "unzip it and give the file inside"),
    (
        lambda data: data.startswith(b"\x28\xb5\x2f\xfd"),
        "zstd-compressed",
        "decompress it (unzstd), or compress it with gzip instead",
    ),
    (lambda data: data.startswith(b"7z\xbc\xaf\x27\x1c"), "a 7z archive", "unpack it and give the file inside"),
    (_is_parquet, "a Parquet file", "give it a .parquet name, so that it is read as one"),
)
BYTE_ORDER_MARKS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
SAMPLE = 65536  # bytes looked at to tell text from binary
CONTROL_SHARE = 0.01  # more control characters than this share of the sample is binary data ...
CONTROL_LEAST = 16  # ... when they are at least this many (a stray one in a short file is left to the line's reader)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class TextFile:
    """A text file's content as UTF-8 bytes, with how it was stored."""

    data: bytes  # UTF-8 (a UTF-8 byte-order mark, if any, is kept: readers strip it)
    encoding: str  # "UTF-8", "UTF-16", "UTF-32" or "Latin-1": what the file was read as
    compression: str | None  # "gzip", "bzip2", "xz", or None

    def describe(self) -> str:
        """``, gzip-compressed, read as Latin-1``: what a report should add to the format's name."""
        parts = [f"{self.compression}-compressed"] if self.compression else []
        parts += [f"read as {self.encoding}"] if self.encoding != "UTF-8" else []
        return "".join(f", {part}" for part in parts)


def inner_suffix(path: str | Path) -> str:
    """The suffix that names the format: ``.csv`` for ``r.csv.gz``, ``.tsv`` for ``r.tsv``."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def read_text_file(path: str | Path, what: str) -> TextFile:
    """``path``'s text as UTF-8 bytes: decompressed and decoded as the module docstring says; ``what`` (e.g.
    "ratings file") names it in the one-line :class:`DataError` that refuses it."""
    raw = read_regular_bytes(path, what)
    compression = None
    for recognised, name, decompress in COMPRESSED:
        if recognised(raw):
            try:
                raw = decompress(raw)
            except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as error:
                reason = " ".join(str(error).split()) or type(error).__name__
                raise DataError(
                    f"{what} {path} is a damaged {name} file ({reason}); compress it again or give it uncompressed"
                ) from None
            compression = name
            break
    for recognised, name, advice in ARCHIVES:
        if recognised(raw):
            inside = f"{compression}-compressed file holds " if compression else ""
            subject = f"{what} {path} {'is ' if not inside else 'is a ' + inside}{name}"
            raise DataError(f"{subject}, not a text table; {advice}")
    data, encoding = _decoded(raw, path, what)
    return TextFile(data, encoding, compression)


def _decoded(raw: bytes, path: str | Path, what: str) -> tuple[bytes, str]:
    for mark, codec, name in BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            try:
                return raw[len(mark) :].decode(codec).encode("utf-8"), name
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{what} {path} starts as {name} text but byte {error.start + len(mark) + 1} is not {name}; "
                    "save it again as UTF-8"
                ) from None
    sample = raw[:SAMPLE]
    if b"\x00" in sample:
        odd_nuls = sample[1::2].count(0) > 0.4 * len(sample[1::2])
        even_nuls = sample[0::2].count(0) > 0.4 * len(sample[0::2])
        if odd_nuls != even_nuls:
            raise DataError(
                f"{what} {path} looks like UTF-16 text without a byte-order mark, not UTF-8; save it as UTF-8 "
                "(in a spreadsheet: CSV UTF-8)"
            )
        raise DataError(f"{what} {path} holds binary data (NUL bytes), not text; give a CSV, TSV or Parquet file")
    controls = sum(sample.count(bytes([byte])) for byte in (*range(0, 9), 11, 12, *range(14, 32), 127))
    if controls >= CONTROL_LEAST and controls > CONTROL_SHARE * len(sample):
        raise DataError(
            f"{what} {path} holds binary data ({controls:,} control characters in its first {len(sample):,} bytes), "
            "not text; give a CSV, TSV or Parquet file"
        )
    try:
        raw.decode("utf-8")
        return raw, "UTF-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1").encode("utf-8"), "Latin-1"
