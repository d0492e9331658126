"""Sentence and word counting for the IFEval checkers, with no NLTK data download.

The official IFEval checker counts sentences with NLTK's pretrained English Punkt model and
capitalised words with NLTK's Treebank word tokenizer. Punkt's data cannot be downloaded here, so
this module reimplements the *decision procedure* Punkt applies at each candidate boundary
(".", "?" or "!" followed by whitespace or closing punctuation) with hand-written stand-ins for the
statistics it learned: a list of English abbreviations and a list of common words that can start
a sentence. What matters for IFEval is the sentence *count*, so the rules aim at the cases that
change counts in model outputs: abbreviations ("e.g.", "Dr."), ellipses, numbered list markers
("1. Foo"), initials, and closing quotes/brackets after the full stop.
"""
from __future__ import annotations

import re

# Abbreviations Punkt's English model treats as non-final (lower case, without the last period).
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof st jr sr sen rep gov gen col lt sgt capt cmdr adm maj rev hon pres
inc ltd co corp dept univ assn bros est approx vs fig figs vol vols pp no nos op cit
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun
e.g i.e u.s u.s.a u.k a.m p.m d.c n.y l.a u.n ph.d b.a m.a b.sc m.sc a.d b.c etc al cf
""".split())

# Capitalised words that Punkt's orthographic statistics mark as likely sentence starters
# (seen in lower case mid-sentence, so a capital means a new sentence).
SENTENCE_STARTERS = frozenset("""
the a an this that these those it its he she they we you there here his her their our my your
in on at for from with by as of to if when while after before since because although though
but and or so yet however also then thus therefore finally first second third next last
what which who whom whose why how where do does did is are was were be been has have had
not no yes all each every some many most more one two three four five six seven eight nine ten
let please note remember make use try keep start consider additionally furthermore moreover
overall instead meanwhile otherwise still today now once just even only even
""".split())

_NONWORD = r"""[?!)";}\]*:@'({\[]"""
# A candidate boundary: an end character followed by closing punctuation or by whitespace + a token.
_CANDIDATE = re.compile(r"[.?!](?=(?P<after>" + _NONWORD + r"|\s+(?P<next>\S+)))")
# Punkt's word tokenizer, rebuilt from its published description: multi-char runs ("--", "..."),
# word-like runs ending before whitespace/punctuation/comma, or a single non-space character.
_MULTI = r"(?:-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD = re.compile(
    r"(" + _MULTI + r"|(?=[^(\"`{\[:;&#*@)}\]\-,])\S+?(?=\s|$|" + _NONWORD + "|" + _MULTI
    + r"|,(?=$|\s|" + _NONWORD + "|" + _MULTI + r"))|\S)"
)
_NUMBER = re.compile(r"^-?[.,]?\d[\d,.\-]*\.?$")
_INITIAL = re.compile(r"^[^\W\d]\.$")
_ELLIPSIS = re.compile(r"^\.\.+$")
# Closing quotes/brackets that belong to the previous sentence (Punkt's realignment rule).
_REALIGN = re.compile(r"[\"')\]}]+?(?:\s+|(?=--)|$)")


def _ortho(token: str) -> bool | None:
    """True: surely starts a sentence; False: surely does not; None: unknown (Punkt's 3 answers)."""
    if token in (";", ":", ",", ".", "!", "?") or not token[:1].isalpha():
        return False if not token[:1].isalnum() else None
    if token[0].islower():
        return False
    core = token.rstrip(".,;:!?\"')]}").lower()
    return True if core in SENTENCE_STARTERS else None


def _is_break(context: str) -> bool:
    """Does the text `word<end>[after]` contain a sentence break before its last token?"""
    tokens = _WORD.findall(context)
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if tok in (".", "?", "!"):
            return True
        if _ELLIPSIS.match(tok) or tok.endswith(".."):
            # an ellipsis ends a sentence only before an obvious sentence starter
            if _ortho(nxt) is True or (nxt[:1].isupper() and nxt.lower() in SENTENCE_STARTERS):
                return True
            continue
        if not tok.endswith("."):
            continue
        base = tok[:-1].lower()
        abbreviation = base in ABBREVIATIONS or base.split("-")[-1] in ABBREVIATIONS
        initial = bool(_INITIAL.match(tok))
        number = bool(_NUMBER.match(tok))
        if abbreviation and not initial:
            if _ortho(nxt) is True:
                return True
            continue
        if initial or number:
            ortho = _ortho(nxt)
            if ortho is False:
                continue
            if ortho is None and initial and nxt[:1].isupper():
                continue
        return True
    return False


def split_sentences(text: str) -> list[str]:
    """Split English text into sentences the way Punkt's English model would (approximately)."""
    spans: list[tuple[int, int]] = []
    last_break = 0
    prev_match = None
    prev_word_start = 0
    prev_word_stop = 0
    matches: list[tuple[re.Match, int]] = []
    for m in _CANDIDATE.finditer(text):
        before = text[prev_word_stop:m.start()]
        ws = max(before.rfind(" "), before.rfind("\n"), before.rfind("\t"), before.rfind("\r"))
        word_start = prev_word_stop + ws + 1 if ws >= 0 else prev_word_start
        # a match inside the same word as the previous one replaces it (e.g. "?!" or "etc.)")
        if prev_match is not None and prev_word_stop <= word_start:
            matches.append((prev_match, prev_word_start))
        prev_match, prev_word_start, prev_word_stop = m, word_start, m.start()
    if prev_match is not None:
        matches.append((prev_match, prev_word_start))
    for m, word_start in matches:
        context = text[word_start:m.start()] + m.group() + (m.group("after") or "")
        if _is_break(context):
            spans.append((last_break, m.end()))
            last_break = m.start("next") if m.group("next") else m.end()
    spans.append((last_break, len(text)))
    # move closing quotes/brackets at the start of a sentence back onto the previous one
    sentences: list[str] = []
    shift = 0
    for i, (start, stop) in enumerate(spans):
        start += shift
        shift = 0
        if i + 1 < len(spans):
            m = _REALIGN.match(text, spans[i + 1][0])
            if m:
                stop = spans[i + 1][0] + len(m.group(0).rstrip())
                shift = m.end() - spans[i + 1][0]
        piece = text[start:stop]
        if piece:
            sentences.append(piece)
    return sentences


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


_WORD_CHARS = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words as IFEval counts them: runs of \\w characters (NLTK's RegexpTokenizer(r"\\w+"))."""
    return len(_WORD_CHARS.findall(text))


_SPLIT_PUNCT = re.compile(r"""([;@#$%&?!\[\](){}<>"]|--|[,:](?!\d)|``|'')""")
_CONTRACTION = re.compile(r"(?i)^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$")
_SPLIT_WORDS = re.compile(r"(?i)^(can)(not)$|^(gon|wan)(na)$|^(got)(ta)$|^(lem|gim)(me)$")


def word_tokenize(text: str) -> list[str]:
    """Treebank-style word tokens: punctuation and English contractions split off.

    Used only to count ALL-CAPS words, so what matters is where Treebank splits a word into two
    cased tokens ("DON'T" -> "DO", "N'T"; "CANNOT" -> "CAN", "NOT") and where it splits punctuation.
    """
    tokens: list[str] = []
    for raw in _SPLIT_PUNCT.sub(r" \1 ", text).split():
        m = _SPLIT_WORDS.match(raw)
        if m:
            tokens.extend(g for g in m.groups() if g)
            continue
        m = _CONTRACTION.match(raw)
        if m and m.group(1) not in ("'",):
            tokens.extend([m.group(1), m.group(2)])
        else:
            tokens.append(raw)
    return tokens
