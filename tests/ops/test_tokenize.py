"""Labels are checked against independent references: transformers' tokenization of
`apply_chat_template` text, and its `{% generation %}` assistant masks."""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pytest

from instructkit.errors import ConfigError
from instructkit.ops.base import Decision, build
from instructkit.ops.tokenize import IGNORE_INDEX, bos_id_if_added, tokenize_batch, tokenize_table
from instructkit.schema import record_schema
from instructkit.templates import load_template


# Tokenizers and conversations shared by the template and tokenize tests.
from tests.fixtures.templates import tokenizers as FIXTURES  # noqa: E402
CONVERSATIONS = FIXTURES.CONVERSATIONS


def _table(convs):
    rows = [{"id": f"r{i}", "messages": c, "source": "t", "meta": "{}"} for i, c in enumerate(convs)]
    return pa.Table.from_pylist(rows, schema=record_schema())


def _runs(labels):
    """Contiguous labelled runs as (start, end) token indices."""
    lab = np.asarray(labels) != IGNORE_INDEX
    edges = np.flatnonzero(np.diff(np.r_[0, lab.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("base", FIXTURES.BASES)
@pytest.mark.parametrize("layout", FIXTURES.LAYOUTS)
def test_ids_match_transformers_and_labels_decode_to_answers(base, layout):
    tok = FIXTURES.tokenizer(base, layout)
    tpl = load_template(tokenizer=tok)
    eot = tpl.end_of_turn
    res = tokenize_batch(_table(CONVERSATIONS), tpl, tok)
    assert res.reason.null_count == len(CONVERSATIONS)
    bos = bos_id_if_added(tok)
    for conv, ids, labels in zip(CONVERSATIONS, res.table["input_ids"].to_pylist(), res.table["labels"].to_pylist()):
        text = tok.apply_chat_template(conv, tokenize=False)
        expected = tok(text, add_special_tokens=False)["input_ids"]
        if bos is not None and expected[:1] != [bos]:
            expected = [bos] + expected
        assert ids == expected
        # exactly one BOS, first, whenever the tokenizer or the template has one
        if tok.bos_token_id is not None and (bos is not None or tpl.spec.bos):
            assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
        answers = [m["content"] for m in conv if m["role"] == "assistant"]
        runs = _runs(labels)
        assert len(runs) == len(answers)  # every assistant turn, and nothing else
        for (s, e), answer in zip(runs, answers):
            assert labels[s:e] == ids[s:e]
            decoded = tok.decode(ids[s:e])
            if base == "gpt2":
                assert decoded == answer + eot  # byte-level BPE decodes losslessly
            else:  # sentencepiece-style decode normalises spaces around special tokens
                assert decoded.replace(" ", "") == (answer + eot).replace(" ", "")
        # prompt tokens are never labelled: everything outside the runs is IGNORE
        outside = np.ones(len(ids), bool)
        for s, e in runs:
            outside[s:e] = False
        assert (np.asarray(labels)[outside] == IGNORE_INDEX).all()


def test_labels_equal_transformers_generation_masks():
    """`{% generation %}` masks computed by transformers itself agree token for token."""
    for base in FIXTURES.BASES:
        tok = FIXTURES.tokenizer(base, "chatml_generation")
        tpl = load_template(tokenizer=tok, fast=False)  # the Jinja engine: spans found by prefix rendering
        fast = load_template(tokenizer=tok)
        assert fast.engine == "builtin"
        table = _table(CONVERSATIONS)
        slow_res = tokenize_batch(table, tpl, tok)
        fast_res = tokenize_batch(table, fast, tok)
        assert slow_res.table["labels"].to_pylist() == fast_res.table["labels"].to_pylist()
        for conv, ids, labels in zip(CONVERSATIONS, fast_res.table["input_ids"].to_pylist(),
                                     fast_res.table["labels"].to_pylist()):
            out = tok.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            ref_ids, ref_mask = list(out["input_ids"]), list(out["assistant_masks"])
            offset = len(ids) - len(ref_ids)  # the BOS we add for stories (transformers leaves it out)
            assert offset in (0, 1) and ids[offset:] == ref_ids
            ours = [int(x != IGNORE_INDEX) for x in labels[offset:]]
            assert ours == ref_mask


def test_train_on_modes():
    tok = FIXTURES.tokenizer("gpt2", "chatml")
    tpl = load_template(tokenizer=tok)
    conv = [CONVERSATIONS[1]]
    last = tokenize_batch(_table(conv), tpl, tok, train_on="last_assistant")
    labels = last.table["labels"].to_pylist()[0]
    ids = last.table["input_ids"].to_pylist()[0]
    (s, e), = _runs(labels)
    assert tok.decode(ids[s:e]) == "{6}<|im_end|>"
    every = tokenize_batch(_table(conv), tpl, tok, train_on="all")
    assert every.table["labels"].to_pylist()[0] == every.table["input_ids"].to_pylist()[0]


def test_empty_mask_truncation_and_drop_are_rejected_with_reasons():
    tok = FIXTURES.tokenizer("gpt2", "chatml")
    tpl = load_template(tokenizer=tok)
    long_prompt = "word " * 60
    convs = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "no answer yet"}],
        [{"role": "user", "content": long_prompt}, {"role": "assistant", "content": "short"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer " * 60}],
    ]
    res = tokenize_batch(_table(convs), tpl, tok, max_length=32, policy="truncate")
    assert res.reason.to_pylist() == [None, "empty_label_mask", "truncated_no_labels", None]
    n_tokens = res.table["n_tokens"].to_pylist()
    assert max(n_tokens) == 32
    assert res.table["truncated"].to_pylist() == [False, False, True, True]
    n_label = res.table["n_label_tokens"].to_pylist()
    labels = res.table["labels"].to_pylist()
    assert n_label[3] == sum(x != IGNORE_INDEX for x in labels[3]) > 0
    assert all(len(x) == n for x, n in zip(labels, n_tokens))
    dropped = tokenize_batch(_table(convs), tpl, tok, max_length=32, policy="drop")
    assert dropped.reason.to_pylist() == [None, "empty_label_mask", "too_long", "too_long"]
    table, reasons = tokenize_table(_table(convs), tpl, tok, max_length=32)
    assert reasons.to_pylist() == res.reason.to_pylist() and "input_ids" in table.column_names


def test_bos_in_content_is_rejected():
    tok = FIXTURES.tokenizer("stories", "chatml")
    tpl = load_template(tokenizer=tok)
    convs = [CONVERSATIONS[0], [{"role": "user", "content": "say <s> please"}, {"role": "assistant", "content": "ok"}]]
    res = tokenize_batch(_table(convs), tpl, tok)
    assert res.reason.to_pylist() == [None, "bos_count"]


def test_operator_from_yaml_options(tmp_path):
    path = FIXTURES.save("gpt2", "chatml", tmp_path)
    op, common = build({"tokenize": {"tokenizer": str(path), "max_length": 64, "annotate_only": True}})
    assert common == {"annotate_only": True}
    op.setup()
    dec = op.process(_table(CONVERSATIONS + [[{"role": "user", "content": "x"}]]))
    assert isinstance(dec, Decision)
    assert dec.reason.to_pylist() == [None] * len(CONVERSATIONS) + ["empty_label_mask"]
    for col in ("input_ids", "labels", "n_tokens", "n_label_tokens"):
        assert col in dec.table.column_names
    import pickle

    clone = pickle.loads(pickle.dumps(op))  # workers receive the op without its tokenizer
    assert clone._tok is None
    tmpl, _ = build({"template": {"template": "llama3"}})
    out = tmpl.process(_table(CONVERSATIONS[:1]))
    assert out.table["text"].to_pylist()[0].startswith("<|begin_of_text|><|start_header_id|>user")


def test_operator_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="tokenizer"):
        build({"tokenize": {}})
    with pytest.raises(ConfigError, match="policy"):
        build({"tokenize": {"tokenizer": "x", "policy": "cut"}})
    with pytest.raises(ConfigError, match="train_on"):
        build({"tokenize": {"tokenizer": "x", "train_on": "everything"}})
    op, _ = build({"tokenize": {"tokenizer": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match="not found"):
        op.setup()
    bare = FIXTURES.STORIES
    op, _ = build({"tokenize": {"tokenizer": str(bare)}})
    with pytest.raises(ConfigError, match="has no chat_template"):
        op.setup()


@pytest.mark.parametrize("base", FIXTURES.BASES)
def test_enlarged_bpe_cache_keeps_ids(base):
    import copy

    from instructkit.ops.tokenize import enlarge_bpe_cache

    tok = copy.deepcopy(FIXTURES.tokenizer(base, "chatml"))
    texts = [tok.apply_chat_template(c, tokenize=False) for c in CONVERSATIONS]
    before = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert enlarge_bpe_cache(tok) is True
    assert [tok(t, add_special_tokens=False)["input_ids"] for t in texts] == before


def test_tokenize_parallel_equals_single_process(tmp_path):
    from instructkit.ops.tokenize import tokenize_parallel

    path = FIXTURES.save("gpt2", "chatml", tmp_path)
    table = _table(CONVERSATIONS * 3)
    tok = FIXTURES.tokenizer("gpt2", "chatml")
    single, reasons = tokenize_table(table, load_template(tokenizer=tok), tok, max_length=40)
    par, par_reasons = tokenize_parallel(table, str(path), {}, workers=2, batch_size=4, max_length=40)
    assert par["input_ids"].to_pylist() == single["input_ids"].to_pylist()
    assert par["labels"].to_pylist() == single["labels"].to_pylist()
    assert par_reasons.to_pylist() == reasons.to_pylist()
