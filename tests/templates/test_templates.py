"""Rendering is checked against transformers' own `apply_chat_template` (an independent renderer)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from instructkit.errors import ConfigError
from instructkit.templates import BUILTIN, TemplateRenderError, load_template, load_tokenizer


# Tokenizers and conversations shared by the template and tokenize tests.
from tests.fixtures.templates import tokenizers as FIXTURES  # noqa: E402
CONVERSATIONS = FIXTURES.CONVERSATIONS


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("generation", [False, True])
def test_builtin_equals_transformers_rendering_of_its_jinja(name, generation):
    tok = FIXTURES.base_tokenizer("stories")
    tpl = load_template(name, tokenizer=tok)
    for conv in CONVERSATIONS:
        prompt = conv[:-1] if generation else conv
        expected = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=generation,
                                           chat_template=tpl.jinja)
        assert tpl.render(prompt, add_generation_prompt=generation) == expected


@pytest.mark.parametrize("base", FIXTURES.BASES)
@pytest.mark.parametrize("layout", FIXTURES.LAYOUTS)
def test_tokenizer_chat_template_rendering(base, layout):
    tok = FIXTURES.tokenizer(base, layout)
    fast = load_template(tokenizer=tok)
    slow = load_template(tokenizer=tok, fast=False)
    assert fast.engine == "builtin" and fast.name == f"tokenizer={layout}"
    assert slow.engine == "jinja"
    named = load_template(layout, tokenizer=tok)
    for conv in CONVERSATIONS:
        for gen in (False, True):
            expected = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            assert fast.render(conv, add_generation_prompt=gen) == expected
            assert slow.render(conv, add_generation_prompt=gen) == expected
            assert named.render(conv, add_generation_prompt=gen) == expected
        # Both engines find the same assistant spans.
        assert fast.render_with_spans(conv) == slow.render_with_spans(conv)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_spans_cover_answer_and_end_of_turn(name):
    tpl = load_template(name, tokenizer=FIXTURES.base_tokenizer("gpt2"))
    for conv in CONVERSATIONS:
        text, spans = tpl.render_with_spans(conv)
        answers = [m["content"] for m in conv if m["role"] == "assistant"]
        assert len(spans) == len(answers)
        for (s, e), answer in zip(spans, answers):
            assert text[s:e] == answer + tpl.end_of_turn
        assert [m["content"] for m in conv if m["role"] == "user"][-1] in text


def test_jinja_spans_with_trimming_template():
    trim = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}</{{ m['role'] }}>\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    tpl = load_template(jinja=trim)
    assert tpl.engine == "jinja"
    conv = CONVERSATIONS[3]
    text, spans = tpl.render_with_spans(conv)
    assert [text[s:e] for s, e in spans] == ["indented answer</assistant>"]


def test_train_on_last_assistant_and_all():
    tpl = load_template("chatml")
    conv = CONVERSATIONS[1]
    text, spans = tpl.render_with_spans(conv, train_on="last_assistant")
    assert [text[s:e] for s, e in spans] == ["{6}<|im_end|>"]
    text, spans = tpl.render_with_spans(conv, train_on="all")
    assert spans == [(0, len(text))]


def test_system_default_and_override():
    conv_no_sys = CONVERSATIONS[0]
    conv_sys = CONVERSATIONS[1]
    default = load_template("chatml", system="Be kind.")
    assert default.render(conv_no_sys).startswith("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user")
    assert default.render(conv_sys).startswith("<|im_start|>system\nYou are a terse assistant.<|im_end|>")
    override = load_template("chatml", system="Be kind.", system_mode="override")
    assert override.render(conv_sys).startswith("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user")
    assert "terse" not in override.render(conv_sys)
    # Jinja export carries the same policy.
    tok = FIXTURES.base_tokenizer("stories")
    for tpl in (default, override):
        for conv in (conv_no_sys, conv_sys):
            assert tpl.render(conv) == tok.apply_chat_template(conv, tokenize=False, chat_template=tpl.jinja)
    # Jinja engine applies it too.
    jin = load_template(jinja=FIXTURES.tokenizer("gpt2", "chatml").chat_template, system="Be kind.", fast=False)
    assert jin.render(conv_no_sys) == default.render(conv_no_sys)


def test_builtin_default_system_and_merge_styles():
    alpaca = load_template("alpaca")
    assert alpaca.render(CONVERSATIONS[0]).startswith("<s>Below is an instruction")
    assert load_template("alpaca", system="Custom.").render(CONVERSATIONS[0]).startswith("<s>Custom.\n\n### Instruction:")
    llama2 = load_template("llama2")
    assert llama2.render(CONVERSATIONS[1]).startswith("<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nWhat is")
    gemma = load_template("gemma")
    assert gemma.render(CONVERSATIONS[1]).startswith("<bos><start_of_turn>user\nYou are a terse assistant.\n\nWhat is")


def test_unsupported_roles_are_reasons_not_crashes():
    from instructkit.schema import MESSAGES_TYPE

    convs = [
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        [{"role": "user", "content": "q"}, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "a"}],
        [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
    ]
    arr = pa.array(convs, type=MESSAGES_TYPE)
    out = load_template("gemma").render_batch(arr)
    assert list(out.reason) == [None, "template_unsupported_role", "template_system_without_user"]
    assert list(load_template("chatml").render_batch(arr).reason) == [None, None, None]
    with pytest.raises(TemplateRenderError):
        load_template("alpaca").render(convs[1])


def test_generation_prompt_is_the_training_prefix():
    """What the model sees at inference is exactly the text before the answer at training."""
    for name in sorted(BUILTIN):
        tpl = load_template(name)
        conv = CONVERSATIONS[0]
        text, spans = tpl.render_with_spans(conv)
        prompt = tpl.render(conv[:-1], add_generation_prompt=True)
        assert text.startswith(prompt), name
        assert text[len(prompt):spans[0][0]].strip() == ""


def test_errors_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown template 'chatmll'"):
        load_template("chatmll")
    with pytest.raises(ConfigError, match="does not compile"):
        load_template(jinja="{% for m in messages %}")
    with pytest.raises(ConfigError, match="not found"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ConfigError, match="has no tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(ConfigError, match="system_mode"):
        load_template("chatml", system_mode="replace")


def test_no_template_falls_back_to_plain_format():
    tok = FIXTURES.base_tokenizer("stories")
    tpl = load_template(tokenizer=tok)
    assert tpl.name == "plain"
    assert tpl.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True) == "User: Hi\nAssistant:"


def test_saved_tokenizer_dir_roundtrip(tmp_path):
    path = FIXTURES.save("stories", "llama3", tmp_path)
    tok = load_tokenizer(path)
    tpl = load_template(tokenizer=tok)
    conv = CONVERSATIONS[1]
    assert tpl.render(conv) == tok.apply_chat_template(conv, tokenize=False)
    assert tpl.render(conv).startswith("<s><|start_header_id|>system")
