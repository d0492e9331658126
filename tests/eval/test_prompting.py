"""Chat tasks are prompted through the project's chat templates (same template as training)."""
from __future__ import annotations

from instructkit.eval.prompting import ChatPrompter, render_plain


def test_plain_for_a_tokenizer_without_chat_template(tiny_lm):
    p = ChatPrompter(tiny_lm.tokenizer)
    assert p.name == "plain"
    assert p("Write a haiku.") == render_plain([{"role": "user", "content": "Write a haiku."}])
    assert p("Hi") == "User: Hi\nAssistant:"


def test_named_template_and_system(tiny_lm):
    p = ChatPrompter(tiny_lm.tokenizer, template="chatml", system="Be brief.")
    out = p("Hi")
    assert out.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert out.endswith("<|im_start|>assistant\n")
    assert out.count("Be brief.") == 1
