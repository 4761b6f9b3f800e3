"""The output streams and the terminal: whatever the locale, the width or the state of the terminal, output works.

- **Encodings.** The tables use symbols (``≥``, ``·``, ``★``, ``±``, ``…``) that an ASCII,
  Latin-1 or cp1252 stdout cannot carry (a POSIX locale with Python's UTF-8 mode off, many Windows
  consoles, ``PYTHONIOENCODING=ascii``). :func:`prepare_streams` makes stdout and stderr write
  such a character as its ASCII spelling (``>=``, ``*``, ``+/-``, ``...``), an accented letter as
  the letter without its accent, and anything else as ``?``, instead of failing: the
  ``rbm-rec-ascii`` error handler. Where the encoding can carry a character nothing changes.
  Rich measures a table before it is written, so tables are spelled in ASCII before they are
  measured (:class:`AsciiTables`, a render hook), and their columns stay aligned.
- **Width.** ``COLUMNS=0`` makes rich print nothing, and a very narrow width cuts table cells to
  ``…``. :func:`usable_width` ignores a width under :data:`MIN_WIDTH` and draws at
  :data:`FALLBACK_WIDTH` instead: the terminal wraps long lines, but nothing is lost.
- **Not a terminal.** Output piped to a file, a pager or a log is read whole, line by line, so it is
  drawn at :data:`PIPED_WIDTH` (:func:`output_width`): every line whole, never cut at 80 columns
  or wrapped in the middle of a number, whatever ``COLUMNS`` says.
- **Table titles.** rich wraps a table's title and caption to the table's own width, so a title
  longer than its table broke over several lines even in a file. :class:`TitlesAsLines` prints
  them as lines of their own above and below the table, wrapped (at a terminal) at the width of
  the terminal, never of the table.
- **A closed pipe or terminal.** :func:`silence_stdout` points a broken stdout at ``/dev/null``,
  so that Python's last flush at exit raises nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import sys
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, ConsoleRenderable, RenderableType
    from rich.text import Text

ERROR_HANDLER = "rbm-rec-ascii"
MIN_WIDTH = 80  # narrower than this, the tables of eight columns cut their headers and cells to "…"
FALLBACK_WIDTH = 80
PIPED_WIDTH = 10_000  # wider than any line the commands print: output that is not a terminal is never wrapped

# The symbols the commands print, spelled in ASCII.
ASCII_SPELLINGS = {
    "≥": ">=",
    "≤": "<=",
    "·": "*",
    "★": "*",
    "±": "+/-",
    "…": "...",
    "−": "-",
    "–": "-",
    "—": "-",
    "×": "x",
    "→": "->",
    "←": "<-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "°": " deg",
    "σ": "s",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "θ": "theta",
    "ε": "eps",
    "\u0302": "^",  # the hat of F̂(n)
    "\u00a0": " ",
}


def _spell(character: str) -> str:
    """One character that the stream's encoding cannot carry, in ASCII."""
    if character in ASCII_SPELLINGS:
        return ASCII_SPELLINGS[character]
    if 0xDC80 <= ord(character) <= 0xDCFF:  # a byte Python could not decode (a file name): keep it visible
        return f"\\x{ord(character) - 0xDC00:02x}"
    name = unicodedata.name(character, "")
    if name.startswith("BOX DRAWINGS"):  # tables and progress bars
        return "|" if "VERTICAL" in name and "HORIZONTAL" not in name else "-" if "HORIZONTAL" in name else "+"
    if name.startswith(("FULL BLOCK", "LEFT", "RIGHT", "UPPER", "LOWER")) and "BLOCK" in name:
        return "#"
    plain = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
    if plain and plain.isascii():
        return plain
    return "?"


def _ascii_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(_spell(character) for character in text), error.end


codecs.register_error(ERROR_HANDLER, _ascii_fallback)


def spelled(text: str, encoding: str) -> str:
    """``text`` with every character ``encoding`` cannot carry spelled in ASCII."""
    return text.encode(encoding, errors=ERROR_HANDLER).decode(encoding)


def can_carry(stream: Any, text: str) -> bool:
    """Whether ``stream``'s encoding can write ``text`` as it is."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def prepare_streams() -> None:
    """Make stdout and stderr spell what their encoding cannot carry (see the module docstring); idempotent."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None or getattr(stream, "errors", None) == ERROR_HANDLER:
            continue
        with contextlib.suppress(ValueError, OSError, TypeError, AttributeError):  # closed, or not reconfigurable
            reconfigure(errors=ERROR_HANDLER)


def usable_width(environment: dict[str, str] | None = None) -> int:
    """The width to draw at: ``COLUMNS`` when it is a number of at least :data:`MIN_WIDTH`, else the
    terminal's width when that is, else :data:`FALLBACK_WIDTH`."""
    environment = os.environ if environment is None else environment
    text = environment.get("COLUMNS", "").strip()
    if text:
        return int(text) if text.isdigit() and int(text) >= MIN_WIDTH else FALLBACK_WIDTH
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
    except (OSError, ValueError, AttributeError):
        columns = shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
    return columns if columns >= MIN_WIDTH else FALLBACK_WIDTH


def output_width(is_terminal: bool, environment: dict[str, str] | None = None) -> int:
    """The width to draw a stream at: :func:`usable_width` for a terminal, :data:`PIPED_WIDTH` for anything else."""
    return usable_width(environment) if is_terminal else PIPED_WIDTH


def silence_stdout() -> None:
    """Point stdout's file descriptor at ``/dev/null`` (after its reader went away), so that nothing more fails."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


class AsciiTables:
    """A rich render hook: what a console prints, spelled for its stream's encoding before rich measures it.

    Strings, styled text and tables (title, caption, headers, cells, nested tables) are spelled
    with the ``rbm-rec-ascii`` handler; where the encoding carries every character nothing changes.
    """

    def __init__(self, console: Console) -> None:
        self.console = console

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        encoding = self.console.encoding
        return [self._spell(renderable, encoding) for renderable in renderables]  # type: ignore[misc]

    def _spell(self, renderable: RenderableType, encoding: str) -> RenderableType:
        from rich.table import Table
        from rich.text import Text

        if isinstance(renderable, str):
            return spelled(renderable, encoding)
        if isinstance(renderable, Text):
            return _spelled_text(renderable, encoding)
        if isinstance(renderable, Table):
            renderable.title = None if renderable.title is None else self._spell(renderable.title, encoding)
            renderable.caption = None if renderable.caption is None else self._spell(renderable.caption, encoding)
            for column in renderable.columns:
                column.header = self._spell(column.header, encoding)
                column.footer = self._spell(column.footer, encoding)
                column._cells = [self._spell(cell, encoding) for cell in column._cells]
        return renderable


def _spelled_text(text: Text, encoding: str) -> Text:
    """Styled text spelled for ``encoding``, its styles moved with the characters they cover."""
    from rich.text import Span, Text

    plain = text.plain
    if can_carry(_Encoding(encoding), plain):
        return text
    pieces, offsets, position = [], [], 0
    for character in plain:
        offsets.append(position)
        piece = spelled(character, encoding)
        pieces.append(piece)
        position += len(piece)
    offsets.append(position)
    spans = [Span(offsets[span.start], offsets[min(span.end, len(plain))], span.style) for span in text.spans]
    return Text(
        "".join(pieces),
        style=text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
        tab_size=text.tab_size,
        spans=spans,
    )


class _Encoding:
    """A stand-in stream of a given encoding, for :func:`can_carry`."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding


def spell_for_streams(*consoles: Console) -> None:
    """Give each console the :class:`AsciiTables` hook once (it does nothing where the encoding carries all)."""
    for console in consoles:
        if not any(isinstance(hook, AsciiTables) for hook in console._render_hooks):
            console.push_render_hook(AsciiTables(console))  # type: ignore[arg-type]


class TitlesAsLines:
    """A rich render hook: a table's title and caption as lines of their own, above and below it (see the module
    docstring). Pushed after :class:`AsciiTables`, which spells them first."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        from rich.console import Group
        from rich.table import Table

        out: list[ConsoleRenderable] = []
        for renderable in renderables:
            if not isinstance(renderable, Table) or (renderable.title is None and renderable.caption is None):
                out.append(renderable)
                continue
            title, caption = renderable.title, renderable.caption
            renderable.title = renderable.caption = None
            pieces: list[RenderableType] = []
            if title is not None:
                pieces.append(self._line(title, "table.title"))
            pieces.append(renderable)
            if caption is not None:
                pieces.append(self._line(caption, "table.caption"))
            out.append(Group(*pieces))
        return out

    def _line(self, text: Text | str, style: str) -> Text:
        line = self.console.render_str(text, style=style, highlight=False) if isinstance(text, str) else text.copy()
        line.stylize(style)
        return line


def titles_as_lines(*consoles: Console) -> None:
    """Give each console the :class:`TitlesAsLines` hook once, after its :class:`AsciiTables` hook."""
    for console in consoles:
        if not any(isinstance(hook, TitlesAsLines) for hook in console._render_hooks):
            console.push_render_hook(TitlesAsLines(console))  # type: ignore[arg-type]
