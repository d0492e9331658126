"""Greedy generation for exact-match tasks, and the answer extraction that scores it.

Prompts are left-padded so every row's next token is predicted at the same position, and
generation stops for a row at EOS or at the first stop string; the returned text is cut before
the stop string. Extraction is deliberately simple and documented: GSM8K compares the final number,
BBH compares the answer text after normalising case, surrounding space and a final period.
"""
from __future__ import annotations

import re
from typing import Any

import torch

_NUMBER = re.compile(r"-?[$]?\d[\d,]*(?:\.\d+)?")


def truncate_at_stop(text: str, until: list[str]) -> str:
    cut = len(text)
    for stop in until:
        if stop:
            i = text.find(stop)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


@torch.inference_mode()
def generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int = 256,
             until: list[str] | None = None, batch_size: int = 8, add_bos: bool = True) -> list[str]:
    """Greedy continuations of `prompts`, in order, each cut at the first stop string."""
    until = [u for u in (until or []) if u]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bos = [tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []
    max_pos = int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
    encoded = []
    for p in prompts:
        ids = tokenizer.encode(p, add_special_tokens=False)
        if bos and ids[:1] != bos:  # chat templates often write the BOS text themselves
            ids = bos + ids
        encoded.append(ids[-max(1, max_pos - max_new_tokens):])
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    eos_ids = _eos_ids(model, tokenizer)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]):] = 1
        new_tokens = min(max_new_tokens, max(1, max_pos - width))
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=new_tokens, pad_token_id=pad, eos_token_id=eos_ids or None,
                             stop_strings=until or None, tokenizer=tokenizer if until else None,
                             temperature=None, top_p=None, top_k=None)
        for row, i in enumerate(idx):
            gen = [t for t in out[row, width:].tolist() if t not in eos_ids]
            text = tokenizer.decode(gen, skip_special_tokens=True)
            outputs[i] = truncate_at_stop(text, until)
    return outputs


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = ids if isinstance(ids, list) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return [int(i) for i in ids]


# ---- answer extraction -------------------------------------------------------------------------
def _clean_number(text: str) -> str | None:
    text = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


def gsm8k_reference(answer: str) -> str | None:
    """The gold number of a GSM8K reference answer (the text after '####')."""
    _, sep, tail = answer.rpartition("####")
    return _clean_number(tail) if sep else None


def gsm8k_extract(output: str) -> str | None:
    """The model's final answer: after '####' or 'The answer is' when present, else the last number."""
    for marker in (r"####", r"(?i)the (?:final )?answer is"):
        parts = re.split(marker, output)
        if len(parts) > 1:
            found = _NUMBER.findall(parts[-1])
            if found:
                return _clean_number(found[0])
    found = _NUMBER.findall(output)
    return _clean_number(found[-1]) if found else None


def bbh_normalize(text: str) -> str:
    return text.strip().rstrip(".").strip().lower()


def bbh_extract(output: str) -> str:
    """The answer text: after 'the answer is' when the model says so, else the first non-empty line."""
    m = re.search(r"(?i)the answer is\s*(.*)", output)
    if m:
        return bbh_normalize(m.group(1).split("\n")[0])
    lines = [ln for ln in output.strip().split("\n") if ln.strip()]
    return bbh_normalize(lines[0]) if lines else ""


def exact_match(output: str, target: str, extract: str) -> tuple[bool, str | None, str | None]:
    """(correct, extracted prediction, normalised gold) for one generated output."""
    if extract == "gsm8k_number":
        gold = gsm8k_reference(target) if "####" in target else _clean_number(target)
        pred = gsm8k_extract(output)
        return pred is not None and pred == gold, pred, gold
    if extract == "bbh_answer":
        pred, gold = bbh_extract(output), bbh_normalize(target)
        return pred == gold, pred, gold
    pred, gold = output.strip(), target.strip()
    return pred == gold, pred, gold
