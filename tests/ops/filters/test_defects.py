from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.ops import build
from tests.conftest import make_table

LONG_OK = ("Regular exercise strengthens the heart, improves sleep and lowers stress. Even a brisk thirty-minute walk "
           "on most days of the week makes a measurable difference for adults of every age.")

# (defect, user, assistant): written for these tests in the shape of the Alpaca defects.
POSITIVES = [
    ("empty_output", "Name the capital of Peru.", "   "),
    ("placeholder_output", "Design a logo for a bakery called Sweet Crumbs.", "<nooutput>"),
    ("placeholder_output", "Draw a map of the campus.", "No output required"),
    ("placeholder_output", "Write a function that reverses a list.", "N/A"),
    ("placeholder_input", "Name three rivers in Europe.\n\nN/A", "The Danube, the Rhine and the Seine."),
    ("placeholder_input", "List two prime numbers.\n\n<noinput>", "2 and 3."),
    ("media_reference", "Describe the mood of this photo.\n\n<image attached>", "The photo feels calm and warm."),
    ("media_reference", "Summarize the article in three sentences.\n\nhttps://news.example.org/2021/05/story-123",
     "The article says that the city will open two new parks."),
    ("media_reference", "Classify the animal in the picture below.", "It is a red fox."),
    ("media_reference", "Write a caption for the painting.\n\n![sunset](https://img.example.com/a.png)", "Golden hour."),
    ("image_generation", "Design a logo for a coffee shop called Bean There.", "A brown circle with a cup in it."),
    ("image_generation", "Generate a picture of a cat wearing a hat.", "A cat wearing a red hat."),
    ("image_generation", "Create a bar chart of the monthly sales.\n\nJan 10, Feb 12", "A bar chart with two bars."),
    ("merged_instructions", "Name a fruit that is yellow.",
     "A banana.\n\n5. Instruction: Convert 10 km to miles.\n5. Input:\n<noinput>\n5. Output:\n6.2 miles"),
    ("refusal", "Create a painting of the ocean at night.",
     "I'm sorry, but as an AI language model I cannot create paintings."),
    ("refusal", "Record a song about summer.", "This task cannot be completed by a GPT model as it requires audio."),
    ("echo", "Explain how photosynthesis works in plants.", "Explain how photosynthesis works in plants."),
    ("truncated", "Describe the water cycle.",
     "Water evaporates from oceans and lakes, rises into the atmosphere, cools and condenses into clouds, and then "
     "falls back to the ground as rain or snow, where it collects in rivers and flows back to the"),
    ("truncated", "Write a Python hello world.", "```python\nprint('hello world')\n"),
    ("control_chars", "Summarize this text.\n\nThe market\x07 rose today.", "The market went up."),
]

NEGATIVES = [
    ("Name the capital of Peru.", "Lima."),
    ("Which of these numbers is prime: 4, 6, 8? Answer none if no number is prime.", "None."),
    ("Describe a painting of a sunset over the sea in two sentences.", "Orange light melts into the water. Boats rest."),
    ("Describe the given painting.\n\n\"The Starry Night\" by Vincent van Gogh", "Swirling blue night sky over a village."),
    ("Extract the domain from this URL.\n\nhttps://www.example.com/path?q=1", "example.com"),
    ("Write the HTML for a link to https://example.com", '<a href="https://example.com">Example</a>'),
    ("Create an input and output pair for a sentiment task.", "Input: I loved it!\nOutput: positive"),
    ("Write a short dialogue in which someone declines an invitation.",
     "Anna: Will you come on Friday?\nBen: I'm sorry, I can't, I have to work."),
    ("What are the limitations of GPT language models?", "GPT models cannot browse the web or remember past chats."),
    ("Write a character sketch of a retired sailor.", "Tom is weathered, patient and loves the sea."),
    ("Create a chart comparing cats and dogs.", "| | Cats | Dogs |\n|---|---|---|\n| Size | small | varies |"),
    ("Write a two-line poem about rain.", "Soft rain on the roof,\nthe garden drinks and sleeps"),
    ("Write a Python hello world.", "```python\nprint('hello world')\n```"),
    ("Give me tips for staying healthy.", LONG_OK),
]


def decide(rows):
    op, _ = build("instruction_defects")
    return op.process(make_table([[("user", u), ("assistant", a)] for u, a in rows]))


@pytest.mark.parametrize("defect,user,assistant", POSITIVES)
def test_positive_is_flagged_and_dropped(defect, user, assistant):
    d = decide([(user, assistant)])
    assert defect in d.table.column("defect_flags").to_pylist()[0]
    assert d.reason.to_pylist()[0] is not None


@pytest.mark.parametrize("user,assistant", NEGATIVES)
def test_negative_is_not_flagged(user, assistant):
    d = decide([(user, assistant)])
    assert d.table.column("defect_flags").to_pylist() == [[]]
    assert d.reason.to_pylist() == [None]


def test_first_flag_in_priority_order_is_the_reason_and_drop_list_is_respected():
    rows = [("Design a logo for a bakery.", "<nooutput>")]  # image_generation + placeholder_output
    d = decide(rows)
    assert d.table.column("defect_flags").to_pylist()[0] == ["placeholder_output", "image_generation"]
    assert d.reason.to_pylist() == ["placeholder_output"]
    assert d.detail.to_pylist() == ['{"defect_flags": ["placeholder_output", "image_generation"]}']
    op, _ = build({"instruction_defects": {"drop": ["image_generation"]}})
    d2 = op.process(make_table([[("user", u), ("assistant", a)] for u, a in rows]))
    assert d2.reason.to_pylist() == ["image_generation"]


def test_multi_turn_rows_use_all_turns():
    t = make_table([[("user", "Hi, can you help me?"), ("assistant", "Of course."),
                     ("user", "Summarize the video.\n\n[video attached]"), ("assistant", "It shows a cooking class.")]])
    op, _ = build("instruction_defects")
    d = op.process(t)
    assert d.table.column("defect_flags").to_pylist() == [["media_reference"]]


def test_unknown_defect_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown defect"):
        build({"instruction_defects": {"drop": ["typo"]}})
    with pytest.raises(ConfigError, match="must be a list"):
        build({"instruction_defects": {"drop": "refusal"}})
