"""Chat templates: one object for training text, loss-mask spans and inference prompts.

    from instructkit.templates import load_template, load_tokenizer
    tok = load_tokenizer("examples/models/stories260K")
    tpl = load_template("chatml", tokenizer=tok, system="You are terse.")
    prompt = tpl.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    text, spans = tpl.render_with_spans(conversation)   # spans: answer + end-of-turn, in characters

Resolution order of `load_template`: a custom Jinja string, else a built-in name, else the
tokenizer's own `chat_template`, else `plain` (the "Role: content" format base models see).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from instructkit.errors import ConfigError
from instructkit.templates.builtin import ALIASES, BUILTIN, TemplateSpec
from instructkit.templates.chat_template import SYSTEM_MODES, TRAIN_ON, ChatTemplate, RenderedBatch
from instructkit.templates.jinja import TemplateRenderError

__all__ = [
    "BUILTIN", "SYSTEM_MODES", "TRAIN_ON", "ChatTemplate", "RenderedBatch", "TemplateRenderError", "TemplateSpec",
    "builtin_names", "load_template", "load_tokenizer",
]


def builtin_names() -> list[str]:
    return sorted(BUILTIN)


def _special_tokens(tokenizer: Any) -> tuple[str | None, str | None, dict[str, str]]:
    if tokenizer is None:
        return None, None, {}
    special = {}
    try:
        special = {k: str(v) for k, v in dict(getattr(tokenizer, "special_tokens_map", {}) or {}).items()
                   if isinstance(v, str)}
    except Exception:  # pragma: no cover - exotic tokenizer objects
        special = {}
    bos = getattr(tokenizer, "bos_token", None)
    eos = getattr(tokenizer, "eos_token", None)
    return (str(bos) if bos is not None else None), (str(eos) if eos is not None else None), special


# Probe conversations used to recognise a Jinja template that is exactly a built-in layout
# (then the vectorized engine is used). They cover system/no system, multi-turn, whitespace at
# the edges of contents (catches trimming templates), braces and non-ASCII text.
_PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " a {b} "},
     {"role": "assistant", "content": "\nc d\n"}, {"role": "user", "content": "é 世界"},
     {"role": "assistant", "content": "ok"}],
    [{"role": "user", "content": "x"}],
]


def _equivalent_builtin(jinja_tpl: ChatTemplate) -> str | None:
    """Name of a built-in layout that renders every probe exactly like this Jinja template."""
    for name, spec in BUILTIN.items():
        cand = ChatTemplate(name, spec=spec, bos_token=jinja_tpl.bos_token or None,
                            eos_token=jinja_tpl.eos_token or None, special_tokens=jinja_tpl.special_tokens,
                            system=jinja_tpl.system, system_mode=jinja_tpl.system_mode)
        if spec.bos and not jinja_tpl.bos_token:
            continue
        try:
            same = all(
                cand.render(p, add_generation_prompt=g) == jinja_tpl.render(p, add_generation_prompt=g)
                for p in _PROBES for g in (False, True)
            )
        except Exception:
            same = False
        if same:
            return name
    return None


def load_template(
    name: str | None = None,
    tokenizer: Any = None,
    jinja: str | None = None,
    system: str | None = None,
    system_mode: str = "default",
    fast: bool = True,
) -> ChatTemplate:
    """Resolve a chat template (see module docstring for the order).

    `system` is the default system prompt for conversations without one; with
    `system_mode="override"` it replaces theirs. `fast=False` keeps Jinja rendering even when the
    template is recognised as a built-in layout (used by tests that compare both engines).
    """
    if system_mode not in SYSTEM_MODES:
        raise ConfigError(f"template: system_mode must be one of {', '.join(SYSTEM_MODES)}, got {system_mode!r}")
    bos, eos, special = _special_tokens(tokenizer)
    if jinja is not None or (name is None and tokenizer is not None and getattr(tokenizer, "chat_template", None)):
        source = jinja if jinja is not None else tokenizer.chat_template
        label = "custom" if jinja is not None else "tokenizer"
        if isinstance(source, dict):  # multiple named templates: transformers uses "default"
            if "default" not in source:
                raise ConfigError(f"template: tokenizer has named chat templates {sorted(source)} but no 'default'")
            source = source["default"]
        if not isinstance(source, str) or not source.strip():
            raise ConfigError("template: the Jinja chat template is empty")
        try:
            from instructkit.templates.jinja import compile_jinja

            compile_jinja(source)
        except Exception as exc:
            raise ConfigError(f"template: the {label} Jinja chat template does not compile: {exc}") from None
        tpl = ChatTemplate(label, jinja=source, bos_token=bos, eos_token=eos, special_tokens=special,
                           system=system, system_mode=system_mode)
        if fast:
            same = _equivalent_builtin(tpl)
            if same is not None:
                fast_tpl = ChatTemplate(f"{label}={same}", spec=BUILTIN[same], bos_token=bos, eos_token=eos,
                                        special_tokens=special, system=system, system_mode=system_mode)
                fast_tpl._jinja_source = source
                return fast_tpl
        return tpl
    if name is None:
        name = "plain"
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BUILTIN:
        raise ConfigError(f"template: unknown template {name!r} (built-in: {', '.join(builtin_names())}; "
                          "or give a Jinja string with `chat_template:`)")
    return ChatTemplate(key, spec=BUILTIN[key], bos_token=bos, eos_token=eos, special_tokens=special,
                        system=system, system_mode=system_mode)


def load_tokenizer(path: str | Path) -> Any:
    """A fast (Rust) tokenizer from a local directory, with a one-line error when it cannot load.

    Accepts a transformers tokenizer dir (tokenizer.json / tokenizer_config.json) or a bare GPT-2
    style dir (vocab.json or encoder.json + merges.txt or vocab.bpe). Never downloads.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"tokenizer: directory {str(path)!r} not found (give a local tokenizer dir)")
    if not p.is_dir():
        raise ConfigError(f"tokenizer: {str(path)!r} is a file; give the directory that holds tokenizer.json")
    if not (p / "tokenizer.json").exists() and not (p / "tokenizer_config.json").exists():
        vocab = next((p / f for f in ("vocab.json", "encoder.json") if (p / f).exists()), None)
        merges = next((p / f for f in ("merges.txt", "vocab.bpe") if (p / f).exists()), None)
        if vocab is None or merges is None:
            raise ConfigError(f"tokenizer: {str(path)!r} has no tokenizer.json, tokenizer_config.json "
                              "or vocab.json+merges.txt")
        return _gpt2_from_files(vocab, merges)
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"tokenizer: cannot load {str(path)!r}: {first}") from None
    if not getattr(tok, "is_fast", False) or getattr(tok, "backend_tokenizer", None) is None:
        raise ConfigError(f"tokenizer: {str(path)!r} is not a fast tokenizer (needs tokenizer.json) — "
                          "offset mappings for loss masks need the Rust tokenizer")
    return tok


def _gpt2_from_files(vocab_path: Path, merges_path: Path) -> Any:
    import json

    from transformers import GPT2Tokenizer

    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    return GPT2Tokenizer(vocab=vocab, merges=merges)
