"""Blocked-word matching, property by property: whole words, any case, and the disguises people use (invisible
characters, look-alike letters from other scripts, compatibility forms, marks drawn over letters) never change
whether a prompt matches; accents that make another word, and longer words that contain a blocked one, do."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.words import LOOKALIKES, blocked_phrase, fold, phrase_key, words_of

LATIN_WORD = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=10)
FORMAT_CHARS = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u180e", "\u2063"]
# Latin letter -> the letters of other scripts that imitate it (inverted from the module's own table).
DISGUISES: dict[str, list[str]] = {}
for code, latin in LOOKALIKES.items():
    DISGUISES.setdefault(str(latin).lower(), []).append(chr(code))


def _sentence(before: list[str], word: str, after: list[str]) -> str:
    return " ".join([*before, word, *after])


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_folding_is_stable(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert words_of(" ".join(words_of(text))) == words_of(text)


@settings(max_examples=200)
@given(LATIN_WORD, st.lists(LATIN_WORD, max_size=4), st.lists(LATIN_WORD, max_size=4), st.data())
def test_a_blocked_word_matches_in_any_case_with_invisible_characters_anywhere(
    word: str, before: list[str], after: list[str], data: st.DataObject
) -> None:
    disguised = ""
    for letter in word:
        upper = data.draw(st.booleans())
        disguised += letter.upper() if upper else letter
        if data.draw(st.booleans()):
            disguised += data.draw(st.sampled_from(FORMAT_CHARS))
    assert blocked_phrase(_sentence(before, disguised, after), [phrase_key(word)]) == word


@settings(max_examples=200)
@given(st.text(alphabet="aceiopsxy", min_size=2, max_size=10), st.data())
def test_look_alike_letters_from_other_scripts_match_the_latin_word(word: str, data: st.DataObject) -> None:
    disguised = "".join(
        data.draw(st.sampled_from(DISGUISES[letter])) if DISGUISES.get(letter) and data.draw(st.booleans()) else letter
        for letter in word
    )
    assert blocked_phrase(f"a {disguised} here", [phrase_key(word)]) == word


@settings(max_examples=100)
@given(LATIN_WORD, st.sampled_from(["NFKC-wide", "math-bold", "circled", "combining-underline"]))
def test_compatibility_forms_and_decorations_match(word: str, form: str) -> None:
    if form == "NFKC-wide":
        disguised = "".join(chr(ord(c) - ord("a") + 0xFF41) for c in word)
    elif form == "math-bold":
        disguised = "".join(chr(ord(c) - ord("a") + 0x1D41A) for c in word)
    elif form == "circled":
        disguised = "".join(chr(ord(c) - ord("a") + 0x24D0) for c in word)
    else:
        disguised = "".join(c + "\u0332" for c in word)
    assert blocked_phrase(f"look: {disguised}!", [phrase_key(word)]) == word


@settings(max_examples=200)
@given(LATIN_WORD, LATIN_WORD)
def test_only_whole_words_match(word: str, extra: str) -> None:
    key = phrase_key(word)
    assert blocked_phrase(f"{extra}{word}", [key]) is None
    assert blocked_phrase(f"{word}{extra}", [key]) is None
    assert blocked_phrase(f"{extra}-{word}.", [key]) == word  # punctuation separates words
    assert blocked_phrase(f"{extra}_{word}", [key]) == word  # so does an underscore


@settings(max_examples=100)
@given(st.lists(LATIN_WORD, min_size=2, max_size=3), st.sampled_from([" ", "  ", ", ", " - ", "\n"]))
def test_a_phrase_matches_its_words_in_a_row_whatever_separates_them(phrase: list[str], gap: str) -> None:
    key = phrase_key(" ".join(phrase))
    assert blocked_phrase("start " + gap.join(p.upper() for p in phrase) + " end", [key]) == key
    assert blocked_phrase("start " + " other ".join(phrase) + " end", [key]) is None


def test_accents_that_make_another_word_do_not_match() -> None:
    assert blocked_phrase("feliz año nuevo", [phrase_key("ano")]) is None
    assert blocked_phrase("un ano", [phrase_key("ano")]) == "ano"
    assert blocked_phrase("a Straße", [phrase_key("strasse")]) == "strasse"  # case folding, not accents


def test_nothing_to_block_and_nothing_blocked() -> None:
    assert phrase_key("  !!! ... ") == ""
    assert blocked_phrase("anything at all", []) is None
    assert blocked_phrase("anything at all", [""]) is None
    assert words_of("Hello, WORLD_wide 2024!") == ("hello", "world", "wide", "2024")


def test_every_look_alike_maps_to_a_latin_letter_from_another_script() -> None:
    for code, latin in LOOKALIKES.items():
        assert str(latin) in string.ascii_letters
        assert not unicodedata.name(chr(code)).startswith("LATIN") or chr(code) in "ıȷɡɑɩʟ"
