"""The 25 IFEval verifiable-instruction checkers, written from the IFEval paper's definitions.

Each checker is a plain function `(response, **kwargs) -> bool` registered under its official
instruction id (e.g. `punctuation:no_comma`); the kwargs are the ones in IFEval's input_data.jsonl.
The rules (what counts as a paragraph, a bullet, a highlighted section, ...) follow the official
checker's observable behaviour so that scores on identical responses are identical; the test suite
proves this against the official golden labels for the published GPT-4 responses.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from instructkit.errors import ConfigError
from instructkit.eval.ifeval.text import count_sentences, count_words, word_tokenize

Checker = Callable[..., bool]
CHECKERS: dict[str, Checker] = {}
RELATIONS = ("less than", "at least")


def checker(instruction_id: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        CHECKERS[instruction_id] = fn
        return fn
    return register


def _compare(value: int, relation: str, threshold: int) -> bool:
    if relation == "less than":
        return value < threshold
    if relation == "at least":
        return value >= threshold
    raise ConfigError(f"IFEval relation must be one of {RELATIONS}, got {relation!r}")


@functools.lru_cache(maxsize=1)
def _language_detector_factory():
    """A private, seeded langdetect factory: deterministic results without touching globals."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of `text`, or None when langdetect finds no usable features."""
    from langdetect.lang_detect_exception import LangDetectException

    detector = _language_detector_factory().create()
    try:
        detector.append(text)
        return detector.detect()
    except LangDetectException:
        return None


# ---- keywords -------------------------------------------------------------------------------
@checker("keywords:existence")
def keywords_existence(response: str, keywords: list[str]) -> bool:
    return all(re.search(k, response, flags=re.IGNORECASE) for k in keywords)


@checker("keywords:frequency")
def keywords_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return _compare(len(re.findall(keyword, response, flags=re.IGNORECASE)), relation, frequency)


@checker("keywords:forbidden_words")
def keywords_forbidden_words(response: str, forbidden_words: list[str]) -> bool:
    return not any(re.search(r"\b" + w + r"\b", response, flags=re.IGNORECASE) for w in forbidden_words)


@checker("keywords:letter_frequency")
def keywords_letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(response.lower().count(letter.lower()), let_relation, let_frequency)


# ---- language and case ------------------------------------------------------------------------
@checker("language:response_language")
def response_language(response: str, language: str) -> bool:
    detected = detect_language(response)
    return detected is None or detected == language  # undetectable text is given the benefit of doubt


@checker("change_case:english_capital")
def english_capital(response: str) -> bool:
    detected = detect_language(response)
    return response.isupper() and (detected is None or detected == "en")


@checker("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    detected = detect_language(response)
    return response.islower() and (detected is None or detected == "en")


@checker("change_case:capital_word_frequency")
def capital_word_frequency(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = sum(1 for w in word_tokenize(response) if w.isupper())
    return _compare(capitals, capital_relation, capital_frequency)


# ---- length -----------------------------------------------------------------------------------
@checker("length_constraints:number_sentences")
def number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return _compare(count_sentences(response), relation, num_sentences)


@checker("length_constraints:number_words")
def number_words(response: str, num_words: int, relation: str) -> bool:
    return _compare(count_words(response), relation, num_words)


@checker("length_constraints:number_paragraphs")
def number_paragraphs(response: str, num_paragraphs: int) -> bool:
    """Paragraphs are separated by a markdown divider `***`; an empty one is allowed only at the ends."""
    parts = re.split(r"\s?\*\*\*\s?", response)
    count = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i in (0, len(parts) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


@checker("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    """Paragraphs are separated by blank lines; the n-th must start with `first_word`."""
    parts = re.split(r"\n\n", response)
    count = sum(1 for p in parts if p.strip())
    if nth_paragraph > count:
        return False
    paragraph = parts[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    found = ""
    for ch in word:
        if ch in ".,?!'\"":
            break
        found += ch.lower()
    return count == num_paragraphs and found == first_word.lower()


# ---- detectable content ------------------------------------------------------------------------
@checker("detectable_content:number_placeholders")
def number_placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


@checker("detectable_content:postscript")
def postscript(response: str, postscript_marker: str) -> bool:
    text = response.lower()
    if postscript_marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + postscript_marker.lower() + r".*$"
    return bool(re.findall(pattern, text, flags=re.MULTILINE))


# ---- detectable format -------------------------------------------------------------------------
@checker("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


@checker("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    text = response.strip()
    return any(o in text for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


@checker("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, num_highlights: int) -> bool:
    singles = re.findall(r"\*[^\n\*]*\*", response)
    doubles = re.findall(r"\*\*[^\n\*]*\*\*", response)
    found = sum(1 for h in singles if h.strip("*").strip())
    found += sum(1 for h in doubles if h.removeprefix("**").removesuffix("**").strip())
    return found >= num_highlights


@checker("detectable_format:multiple_sections")
def multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    parts = re.split(r"\s?" + section_spliter + r"\s?\d+\s?", response)
    return len(parts) - 1 >= num_sections


@checker("detectable_format:json_format")
def json_format(response: str) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@checker("detectable_format:title")
def title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# ---- combination, start/end, punctuation -------------------------------------------------------
@checker("combination:two_responses")
def two_responses(response: str) -> bool:
    parts = response.split("******")
    kept = []
    for i, part in enumerate(parts):
        if not part.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            kept.append(part)
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


@checker("combination:repeat_prompt")
def repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@checker("startend:end_checker")
def end_checker(response: str, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@checker("startend:quotation")
def quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


@checker("punctuation:no_comma")
def no_comma(response: str) -> bool:
    return "," not in response


def check(instruction_id: str, response: str, kwargs: dict[str, Any] | None) -> bool:
    """Run one checker; unknown ids or missing/unexpected kwargs are a ConfigError, not a crash."""
    fn = CHECKERS.get(instruction_id)
    if fn is None:
        raise ConfigError(f"unknown IFEval instruction id {instruction_id!r} (known: {len(CHECKERS)} ids)")
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return bool(fn(response, **args))
    except TypeError as exc:
        raise ConfigError(f"IFEval instruction {instruction_id!r}: bad kwargs {sorted(args)} ({exc})") from None
