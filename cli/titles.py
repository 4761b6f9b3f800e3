"""Movie-title matching for the commands: what a user types against MovieLens titles.

MovieLens spells titles "Usual Suspects, The (1995)" and "Misérables, Les (1995)"; people type
"the usual suspects" or "Les Miserables". Both sides are reduced to a *key* — lower case, accents
and punctuation dropped, articles dropped wherever they stand, the trailing "(year)" set apart —
and compared in rounds, each only when the one before found nothing:

0. verbatim: the query is a title exactly as the catalogue spells it;
1. exact: the keys are equal (and the years, when the query gives one);
2. containing: the query's words appear, in order and side by side, in the title;
3. close: :func:`difflib.get_close_matches` on the keys; never a match, only suggestions.

Typed at the prompt (``similar --movie``) all rounds apply. In a file (``strict``), where nobody
looks at each line, only rounds 0 and 1 can match, and round 1 only when it finds one movie;
what round 2 finds is offered as suggestions, never taken. A query that is a whole number is a
movie id.

A search (the interactive session's ``search``) is wider than a match: :func:`titles_containing`
lists every title holding each word of the query at the start of one of its words, so ``alien``
finds *Alien*, *Aliens*, *Alien 3* and *Alien: Resurrection*. Pure functions of plain lists: no
I/O, no numpy.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# English, French, Spanish, Italian and German articles, as MovieLens moves them to the end
ARTICLES = frozenset({"the", "a", "an", "les", "la", "le", "l", "il", "el", "los", "las", "das", "der", "die"})
_YEAR = re.compile(r"\(\s*(\d{4})\s*(?:[-–]\s*\d{0,4}\s*)?\)\s*$")
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script


def split_year(text: str) -> tuple[str, int | None]:
    """``"Star Wars (1977)"`` -> ``("Star Wars", 1977)``; no trailing parenthesised year -> ``(text, None)``."""
    match = _YEAR.search(text)
    if match is None:
        return text.strip(), None
    return text[: match.start()].strip(), int(match.group(1))


def title_words(text: str) -> tuple[str, ...]:
    """The words that identify a title: lower case, no accents, no punctuation, no articles.

    ``"Usual Suspects, The"`` and ``"the usual suspects"`` both give ``("usual", "suspects")``;
    apostrophes join their word (``"Schindler's"`` -> ``"schindlers"``); letters without an
    accent to drop stay as they are (``"Ægir"`` -> ``"ægir"``).
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M")).casefold()
    plain = re.sub(r"[’'`]", "", plain)
    words = tuple(word for word in _WORD.findall(plain) if word not in ARTICLES)
    return words or tuple(_WORD.findall(plain))  # a title made only of articles ("The") keeps them


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds control or format characters (never in a title; typical of binary data)."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in text)


def _contains(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    n = len(part)
    return any(words[i : i + n] == part for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class TitleMatch:
    """The outcome of a search: ``ids`` holds one id (found), several (ambiguous) or none (unknown).

    ``suggestions`` are near titles' ids for an unknown title, best first.
    """

    query: str
    ids: tuple[int, ...]
    suggestions: tuple[int, ...] = ()

    @property
    def found(self) -> bool:
        return len(self.ids) == 1

    @property
    def ambiguous(self) -> bool:
        return len(self.ids) > 1


def match_title(
    query: str,
    ids: Sequence[int],
    titles: Sequence[str],
    *,
    strict: bool = False,
    numbers_are_ids: bool = True,
    max_candidates: int = 8,
    max_suggestions: int = 5,
) -> TitleMatch:
    """Find the movie ``query`` names among ``titles`` (aligned with ``ids``); see the module docstring.

    A whole-number query is looked up as an id (so "1941" is movie 1941; "1941 (1979)" is the
    title). Ambiguous results list at most ``max_candidates`` ids, in catalogue order. With
    ``strict`` only a verbatim title or a key shared by one movie matches; near titles come back
    as ``suggestions``. With ``numbers_are_ids=False`` a whole number is matched as a title like
    any other text (for callers that looked ids up themselves).
    """
    text = query.strip()
    if numbers_are_ids and re.fullmatch(r"\d+", text):
        number = int(text)
        return TitleMatch(query, (number,) if number in set(ids) else (), ())
    if strict and has_control_characters(text):
        return TitleMatch(query, ())  # not a title: binary data, or text in another encoding
    verbatim = [i for i, title in enumerate(titles) if title.strip() == text]
    if verbatim:
        return TitleMatch(query, tuple(int(ids[i]) for i in verbatim[:max_candidates]))
    name, year = split_year(text)
    wanted = title_words(name)
    if not wanted:
        return TitleMatch(query, ())
    keys = [split_year(title) for title in titles]
    words = [title_words(title_name) for title_name, _ in keys]

    def same_year(index: int) -> bool:
        return year is None or keys[index][1] == year

    exact = [i for i in range(len(ids)) if words[i] == wanted and same_year(i)]
    containing = [] if exact else [i for i in range(len(ids)) if _contains(words[i], wanted) and same_year(i)]
    if exact or (containing and not strict):
        return TitleMatch(query, tuple(int(ids[i]) for i in (exact or containing)[:max_candidates]))
    joined = [" ".join(w) for w in words]
    close = difflib.get_close_matches(" ".join(wanted), joined, n=max_suggestions * 3, cutoff=0.6)
    suggestions: list[int] = [int(ids[i]) for i in containing]
    for key in close:  # several titles may share a key (remakes): suggest each once, best first
        for i, candidate in enumerate(joined):
            if candidate == key and int(ids[i]) not in suggestions:
                suggestions.append(int(ids[i]))
    return TitleMatch(query, (), tuple(suggestions[:max_suggestions]))


def titles_containing(query: str, titles: Sequence[str]) -> list[int]:
    """The positions of every title in which each word of ``query`` begins a word (case, accents, punctuation
    and articles set aside; the year counts as a word), in catalogue order: ``godfather`` finds all three
    Godfathers, ``star 1977`` finds Star Wars (1977)."""
    wanted = title_words(query)
    if not wanted:
        return []
    found = []
    for position, title in enumerate(titles):
        words = title_words(title)
        if all(any(word.startswith(part) for word in words) for part in wanted):
            found.append(position)
    return found
