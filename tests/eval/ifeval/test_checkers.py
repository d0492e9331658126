"""Hand-made cases for checkers whose rules are easy to get subtly wrong."""
from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.eval.ifeval import check


@pytest.mark.parametrize("iid,response,kwargs,expected", [
    ("length_constraints:number_paragraphs", "a\n***\nb\n***\nc", {"num_paragraphs": 3}, True),
    ("length_constraints:number_paragraphs", "a\n***\n\n***\nc", {"num_paragraphs": 2}, False),  # empty middle
    ("length_constraints:nth_paragraph_first_word", "Intro.\n\n\"Summer is here.\"", 
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summer"}, True),
    ("detectable_format:number_bullet_lists", "* one\n* two\n- three\n**bold** line", {"num_bullets": 3}, True),
    ("detectable_format:number_highlighted_sections", "*a* and **b** and ** **", {"num_highlights": 2}, True),
    ("detectable_format:json_format", "```json\n{\"a\": 1}\n```", {}, True),
    ("detectable_format:json_format", "{a: 1}", {}, False),
    ("detectable_format:title", "<<My Title>>\ntext", {}, True),
    ("detectable_format:title", "<< >>", {}, False),
    ("combination:two_responses", "first******second", {}, True),
    ("combination:two_responses", "same******same", {}, False),
    ("detectable_content:postscript", "Bye.\nP.S. see you", {"postscript_marker": "P.S."}, True),
    ("detectable_content:postscript", "Bye.\nP.P.S see you", {"postscript_marker": "P.P.S"}, True),
    ("detectable_format:multiple_sections", "SECTION 1\na\nSECTION 2\nb", {"section_spliter": "SECTION",
                                                                         "num_sections": 2}, True),
    ("startend:quotation", '"quoted"', {}, True),
    ("startend:end_checker", 'Done. Is there anything else I can help with?"',
     {"end_phrase": "Is there anything else I can help with?"}, True),
    ("keywords:frequency", "cat Cat cAt dog", {"keyword": "cat", "frequency": 3, "relation": "at least"}, True),
    ("keywords:forbidden_words", "a category", {"forbidden_words": ["cat"]}, True),  # word boundary
    ("change_case:capital_word_frequency", "WE ARE HERE now", {"capital_frequency": 3,
                                                                "capital_relation": "less than"}, False),
    ("change_case:english_lowercase", "all lower case english text here, quite plainly written.", {}, True),
    ("language:response_language", "Ceci est une phrase en français, écrite simplement pour le test.",
     {"language": "fr"}, True),
])
def test_checker_cases(iid, response, kwargs, expected):
    assert check(iid, response, kwargs) is expected


def test_unknown_id_and_bad_relation_are_config_errors():
    with pytest.raises(ConfigError, match="unknown IFEval instruction id"):
        check("nope:nothing", "x", {})
    with pytest.raises(ConfigError, match="relation must be one of"):
        check("length_constraints:number_words", "a b", {"num_words": 1, "relation": "more than"})
    with pytest.raises(ConfigError, match="bad kwargs"):
        check("length_constraints:number_words", "a b", {"words": 1})
