"""Blocked words: a server's list of words and phrases that prompts may not contain.

Matching is on whole words, case-insensitive, and on what a reader sees rather than on code points, so the usual
tricks do not slip through:

- compatibility forms (full-width `ｂａｄ`, mathematical `𝐛𝐚𝐝`, circled `ⓑⓐⓓ`, ligatures) become plain
  letters (NFKC);
- invisible format characters (zero-width space, joiners, soft hyphen, word joiner, byte-order mark…) are
  removed, so `b\u200bad` is `bad`, not two words;
- letters of other scripts that look Latin (Cyrillic `а`, `е`, `о`, `р`, `с`…, Greek `ο`, `ρ`, `Α`…) count as
  the Latin letter they imitate (`LOOKALIKES`, a small table of our own);
- case is folded (`casefold`, which also handles `ß` and the like);
- marks that cannot combine with their letter into one character (an underline or strike-through drawn over
  each letter) are dropped; accented letters stay what they are, so blocking `ano` does not block `año`.

The list and the prompt go through the same folding, so a word blocked in any spelling matches every spelling.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["LOOKALIKES", "MAX_PHRASE_CHARS", "blocked_phrase", "fold", "phrase_key", "words_of"]

MAX_PHRASE_CHARS = 100

# Letters of other scripts that are drawn like a Latin letter, by case: an upper-case Greek Nu looks like N, its
# lower case like v, so the mapping must happen before case folding.
_LOOKALIKE_PAIRS = {
    # Cyrillic capitals
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Cyrillic small letters
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "ь": "b", "ꙇ": "i",
    # Greek capitals
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Greek small letters
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    # Latin letters that read as another Latin letter
    "ı": "i", "ȷ": "j", "ɡ": "g", "ɑ": "a", "ɩ": "i", "ʟ": "l",
}  # fmt: skip
LOOKALIKES = str.maketrans(_LOOKALIKE_PAIRS)
"""Look-alike letter → the Latin letter it imitates (applied before case folding)."""

_WORD = re.compile(r"[^\W_]+")  # letters and digits; underscores and punctuation separate words


def fold(text: str) -> str:
    """`text` as a reader sees it, in one canonical spelling (see the module docstring for each step)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.translate(LOOKALIKES).casefold()
    text = unicodedata.normalize("NFC", text)
    # What is still a separate combining mark after NFC did not merge with its letter: decoration, not spelling.
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    # Folding can turn a character into one that has a look-alike (NFKC of a symbol into Cyrillic, say); one
    # more pass makes the result stable, so folding a folded text changes nothing.
    return text.translate(LOOKALIKES).casefold()


def words_of(text: str) -> tuple[str, ...]:
    """The folded words of `text`, in order."""
    return tuple(_WORD.findall(fold(text)))


def phrase_key(phrase: str) -> str:
    """How a blocked word or phrase is stored and compared: its folded words joined by single spaces ("" when it
    has no letters or digits at all, which cannot be blocked)."""
    return " ".join(words_of(phrase))


def blocked_phrase(prompt: str, keys: Iterable[str]) -> str | None:
    """The first blocked phrase (a `phrase_key`) that `prompt` contains as whole words, or None.

    A phrase matches a run of consecutive words, so `bad` matches "a bad idea" and "BAD!" but not "badge", and
    `bad idea` matches "a bad, idea" (punctuation between words does not matter) but not "a bad good idea"."""
    by_length: dict[int, set[str]] = {}
    for key in keys:
        if key:
            by_length.setdefault(key.count(" ") + 1, set()).add(key)
    if not by_length:
        return None
    words = words_of(prompt)
    for start in range(len(words)):
        for length, phrases in sorted(by_length.items()):
            if start + length <= len(words):
                candidate = " ".join(words[start : start + length])
                if candidate in phrases:
                    return candidate
    return None
