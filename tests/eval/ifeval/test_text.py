"""Sentence splitting and word tokenizing without NLTK data, on the cases that change counts."""
from instructkit.eval.ifeval.text import count_sentences, count_words, split_sentences, word_tokenize


def test_basic_sentences():
    assert split_sentences("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert count_sentences("") == 0
    assert count_sentences("no final period") == 1


def test_abbreviations_and_initials_do_not_split():
    assert count_sentences("Dr. Smith met Mr. Jones at 5 p.m. yesterday.") == 1
    assert count_sentences("Use tools, e.g. hammers and saws, with care.") == 1
    assert count_sentences("The author J. K. Rowling wrote it.") == 1


def test_newlines_alone_do_not_split_but_list_numbers_do():
    assert count_sentences("apples\nbananas\ncherries") == 1
    # Punkt ends a sentence after "1." when a capitalised word follows
    assert count_sentences("1. Buy milk\n2. Walk the dog") == 3


def test_closing_quote_stays_with_its_sentence():
    assert split_sentences('He said "Go home." Then he left.') == ['He said "Go home."', "Then he left."]


def test_ellipsis_before_lowercase_is_not_a_break():
    assert count_sentences("Wait... what happened? Nothing.") == 2


def test_words_and_capital_tokens():
    assert count_words("It's 3 o'clock, isn't it?") == 8
    toks = word_tokenize("I DON'T know, CANNOT say (NASA) rules.")
    assert [t for t in toks if t.isupper()] == ["I", "DO", "N'T", "CAN", "NOT", "NASA"]
