"""`ChatTemplate`: one object renders training text, assistant spans and inference prompts.

Using the same object for training (`render_batch`) and inference (`render(...,
add_generation_prompt=True)`) removes the "trained with one template, evaluated with another"
bug. Assistant spans are character ranges in the rendered text (answer content + its
end-of-turn marker); the tokenizer's offset mapping turns them into token labels, so masks never
depend on finding token ids of markers (which breaks whenever a marker merges with a neighbour).

Two engines sit behind the same interface:
- built-in layouts (`TemplateSpec`) render a whole Arrow batch with Polars string columns; spans
  are known by construction;
- any Jinja template (a tokenizer's `chat_template` or a custom string) renders row by row; the
  span of assistant turn i is found by rendering the conversation up to turn i with and without
  the answer (the text must grow by prefix, which we check rather than assume). A Jinja template
  that behaves exactly like a built-in layout on a set of probe conversations uses the fast engine.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from instructkit import messages as msg
from instructkit.templates.builtin import TemplateSpec
from instructkit.templates.jinja import TemplateRenderError, compile_jinja, spec_to_jinja

TRAIN_ON = ("assistant", "last_assistant", "all")
SYSTEM_MODES = ("default", "override")


@dataclass
class RenderedBatch:
    """Rendered text per row and the trained character spans (row, start, end), sorted by row."""

    texts: list[str]
    span_row: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    reason: np.ndarray  # object: None where the row rendered, else a reject reason code
    detail: np.ndarray  # object: None or a JSON string


def _chunk(col: Any) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else (col.chunk(0) if col.num_chunks else pa.array([], col.type))
    return col


def _to_arrow_messages(messages: Sequence[dict]) -> pa.Array:
    from instructkit.schema import MESSAGES_TYPE

    rows = [[{"role": m.get("role"), "content": m.get("content")} for m in messages]]
    return pa.array(rows, type=MESSAGES_TYPE)


class ChatTemplate:
    """A chat template bound to the BOS/EOS text of one tokenizer and a system-prompt policy."""

    def __init__(
        self,
        name: str,
        *,
        spec: TemplateSpec | None = None,
        jinja: str | None = None,
        bos_token: str | None = None,
        eos_token: str | None = None,
        special_tokens: dict[str, str] | None = None,
        system: str | None = None,
        system_mode: str = "default",
    ):
        if spec is None and jinja is None:
            raise ValueError("a ChatTemplate needs a built-in spec or a Jinja source")
        if system_mode not in SYSTEM_MODES:
            raise ValueError(f"system_mode must be one of {SYSTEM_MODES}, got {system_mode!r}")
        self.name = name
        self.spec = spec
        self.system = system
        self.system_mode = system_mode
        self.bos_token = bos_token if bos_token is not None else (spec.default_bos if spec else "")
        self.eos_token = eos_token if eos_token is not None else (spec.default_eos if spec else "")
        self.special_tokens = dict(special_tokens or {})
        self._jinja_source = jinja
        if spec is not None:
            sub = lambda s: s.replace("{bos}", self.bos_token).replace("{eos}", self.eos_token)  # noqa: E731
            self._roles = {r: (sub(a), sub(b)) for r, (a, b) in spec.roles.items()}
            a_pre, a_eot, a_after = spec.assistant
            self._assistant = (sub(a_pre), sub(a_eot), sub(a_after))
            self._gen = sub(spec.generation_prompt)
            self._head = self.bos_token if spec.bos else ""

    # ------------------------------------------------------------------ public API
    @property
    def engine(self) -> str:
        """"builtin" (vectorized) or "jinja" (row by row)."""
        return "builtin" if self.spec is not None else "jinja"

    @property
    def end_of_turn(self) -> str | None:
        """The text that closes an assistant turn (trained), when the layout defines one."""
        return self._assistant[1] if self.spec is not None else None

    @property
    def jinja(self) -> str:
        """This template as a Jinja chat template (save it as a tokenizer's `chat_template`)."""
        if self._jinja_source is not None and (self.spec is None or self.system is None):
            return self._jinja_source
        assert self.spec is not None
        return spec_to_jinja(self.spec, self.system, self.system_mode)

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
        """Text of one conversation; with `add_generation_prompt` the prompt a model completes."""
        if self.spec is None:
            return self._render_jinja(self._apply_system(messages), add_generation_prompt)
        batch = self.render_batch(_to_arrow_messages(messages), train_on="assistant")
        if batch.reason[0] is not None:
            raise TemplateRenderError(f"template {self.name}: {batch.reason[0]} {batch.detail[0] or ''}".strip())
        return batch.texts[0] + (self._gen if add_generation_prompt else "")

    def render_with_spans(self, messages: Sequence[dict], train_on: str = "assistant") -> tuple[str, list[tuple[int, int]]]:
        """(text, [(start, end), ...]): character spans of the trained answers incl. end-of-turn."""
        batch = self.render_batch(_to_arrow_messages(messages), train_on=train_on)
        if batch.reason[0] is not None:
            raise TemplateRenderError(f"template {self.name}: {batch.reason[0]} {batch.detail[0] or ''}".strip())
        return batch.texts[0], [(int(s), int(e)) for s, e in zip(batch.span_start, batch.span_end)]

    def render_batch(self, messages: pa.Array | pa.ChunkedArray, train_on: str = "assistant") -> RenderedBatch:
        """Render a whole `messages` column; rows the template cannot render get a reason."""
        if train_on not in TRAIN_ON:
            raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
        arr = _chunk(messages)
        if self.spec is not None:
            out = self._render_builtin(arr)
        else:
            out = self._render_jinja_batch(arr)
        return _select_spans(out, train_on)

    def __repr__(self) -> str:
        return f"ChatTemplate({self.name!r}, engine={self.engine}, system={self.system!r}, mode={self.system_mode})"

    # ------------------------------------------------------------------ system prompt
    def _apply_system(self, messages: Sequence[dict]) -> list[dict]:
        msgs = [dict(m) for m in messages]
        if self.system is None:
            return msgs
        has = bool(msgs) and msgs[0].get("role") == "system"
        if has and self.system_mode == "override":
            msgs[0] = {"role": "system", "content": self.system}
        elif not has:
            msgs.insert(0, {"role": "system", "content": self.system})
        return msgs

    # ------------------------------------------------------------------ built-in engine
    def _render_builtin(self, arr: pa.Array) -> RenderedBatch:
        spec = self.spec
        assert spec is not None
        n = len(arr)
        rows, role, content = msg.flatten(arr)
        turn = msg.turn_index(arr)
        df = pl.DataFrame({
            "row": rows.astype(np.int64),
            "t": turn,
            "role": pl.from_arrow(role).fill_null("").cast(pl.String),
            "content": pl.from_arrow(content).fill_null("").cast(pl.String),
        })
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)

        # System prompt per row: the conversation's own first system turn, then default/override.
        is_sys0 = (df["role"] == "system") & (df["t"] == 0)
        row_sys = np.full(n, None, dtype=object)
        own = df.filter(is_sys0)
        row_sys[own["row"].to_numpy()] = np.asarray(own["content"].to_list(), dtype=object)
        if self.system is not None:
            if self.system_mode == "override":
                row_sys[:] = self.system
            else:
                row_sys[np.equal(row_sys, None)] = self.system
        elif spec.default_system is not None:
            row_sys[np.equal(row_sys, None)] = spec.default_system
        df = df.filter(~is_sys0)
        has_sys = ~np.equal(row_sys, None)

        # Roles the layout cannot write.
        known = set(spec.roles) | {"assistant"}
        bad = df.filter(~pl.col("role").is_in(list(known)))
        if bad.height:
            first_bad = bad.group_by("row", maintain_order=True).agg(pl.col("role").first())
            r = first_bad["row"].to_numpy()
            reason[r] = "template_unsupported_role"
            detail[r] = [json.dumps({"template": self.name, "role": x}) for x in first_bad["role"].to_list()]

        sys_pre, sys_post = spec.system_format.split("{system}")
        head = np.full(n, self._head, dtype=object)
        if spec.system_style == "turn" and has_sys.any():
            sp, ss = self._roles["system"]
            idx = np.flatnonzero(has_sys)
            extra = pl.DataFrame({"row": idx.astype(np.int64), "t": np.full(len(idx), -1, dtype=np.int64),
                                  "role": ["system"] * len(idx), "content": row_sys[idx].tolist()})
            df = pl.concat([extra, df]).sort(["row", "t"])
        elif spec.system_style == "preamble" and has_sys.any():
            idx = np.flatnonzero(has_sys)
            head[idx] = [self._head + sys_pre + s + sys_post for s in row_sys[idx]]
        elif spec.system_style == "merge" and has_sys.any():
            firsts = df.group_by("row", maintain_order=True).agg(pl.col("t").first(), pl.col("role").first())
            ok_first = np.zeros(n, dtype=bool)
            ok_first[firsts["row"].to_numpy()] = (firsts["role"] == "user").to_numpy()
            need = has_sys & ~ok_first & np.equal(reason, None)
            reason[need] = "template_system_without_user"
            detail[need] = json.dumps({"template": self.name, "why": "the system prompt goes into the first user turn"})
            sys_series = pl.Series("sys", row_sys.tolist(), dtype=pl.String)
            first_t = np.full(n, -2, dtype=np.int64)
            first_t[firsts["row"].to_numpy()] = firsts["t"].to_numpy()
            df = df.with_columns(
                sys=sys_series.gather(df["row"]),
                first=pl.Series(first_t).gather(df["row"]) == pl.col("t"),
            ).with_columns(
                content=pl.when(pl.col("first") & (pl.col("role") == "user") & pl.col("sys").is_not_null())
                .then(pl.concat_str([pl.lit(sys_pre), pl.col("sys"), pl.lit(sys_post), pl.col("content")]))
                .otherwise(pl.col("content"))
            ).drop("sys", "first")

        a_pre, a_eot, a_after = self._assistant
        pre_map = {r: p for r, (p, _) in self._roles.items()} | {"assistant": a_pre}
        suf_map = {r: s for r, (_, s) in self._roles.items()} | {"assistant": a_eot + a_after}
        df = df.with_columns(
            pre=pl.col("role").replace_strict(pre_map, default="", return_dtype=pl.String),
            suf=pl.col("role").replace_strict(suf_map, default="", return_dtype=pl.String),
        ).with_columns(piece=pl.concat_str(["pre", "content", "suf"]))
        df = df.with_columns(
            plen=pl.col("pre").str.len_chars().cast(pl.Int64),
            clen=pl.col("content").str.len_chars().cast(pl.Int64),
            len=pl.col("piece").str.len_chars().cast(pl.Int64),
        ).with_columns(start=pl.col("len").cum_sum().over("row") - pl.col("len"))

        head_len = np.fromiter((len(h) for h in head), dtype=np.int64, count=n)
        body = df.group_by("row", maintain_order=True).agg(pl.col("piece").str.join(""))
        bodies = np.full(n, "", dtype=object)
        bodies[body["row"].to_numpy()] = np.asarray(body["piece"].to_list(), dtype=object)
        texts = (head + bodies).tolist() if n else []

        asst = df.filter(pl.col("role") == "assistant")
        span_row = asst["row"].to_numpy().astype(np.int64)
        span_start = head_len[span_row] + asst["start"].to_numpy() + asst["plen"].to_numpy()
        span_end = span_start + asst["clen"].to_numpy() + len(a_eot)
        return RenderedBatch(texts, span_row, span_start.astype(np.int64), span_end.astype(np.int64), reason, detail)

    # ------------------------------------------------------------------ Jinja engine
    def _render_jinja(self, messages: list[dict], add_generation_prompt: bool) -> str:
        tmpl = compile_jinja(self._jinja_source)
        kwargs = dict(self.special_tokens)
        kwargs.update(bos_token=self.bos_token, eos_token=self.eos_token)
        try:
            return tmpl.render(messages=messages, add_generation_prompt=add_generation_prompt, **kwargs)
        except TemplateRenderError:
            raise
        except Exception as exc:  # Jinja errors inside user templates: one line, not a traceback
            raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from None

    def _jinja_spans(self, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        full = self._render_jinja(messages, False)
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if m.get("role") != "assistant":
                continue
            upto = self._render_jinja(messages[: i + 1], False)
            if not full.startswith(upto):
                raise TemplateRenderError("template output is not prefix-stable (earlier turns render differently)")
            try:
                before = self._render_jinja(messages[:i], True)
            except TemplateRenderError:
                before = ""
            if not upto.startswith(before):
                try:
                    before = self._render_jinja(messages[:i], False)
                except TemplateRenderError:
                    before = ""
                if not upto.startswith(before):
                    before = ""
            content = m.get("content") or ""
            start = len(before)
            k = upto.find(content, start) if content else -1
            if k < 0 and content.strip():
                k = upto.find(content.strip(), start)
            if k >= 0:
                start = k
            end = len(upto.rstrip())
            spans.append((start, max(start, end)))
        return full, spans

    def _render_jinja_batch(self, arr: pa.Array) -> RenderedBatch:
        n = len(arr)
        texts: list[str] = []
        rows: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)
        for r, conv in enumerate(arr.to_pylist()):
            msgs = self._apply_system([{"role": m["role"], "content": m["content"] or ""} for m in (conv or [])])
            try:
                text, spans = self._jinja_spans(msgs)
            except TemplateRenderError as exc:
                reason[r] = "template_error"
                detail[r] = json.dumps({"template": self.name, "error": str(exc)[:300]})
                text, spans = "", []
            texts.append(text)
            for s, e in spans:
                rows.append(r)
                starts.append(s)
                ends.append(e)
        return RenderedBatch(texts, np.asarray(rows, np.int64), np.asarray(starts, np.int64),
                             np.asarray(ends, np.int64), reason, detail)


def _select_spans(out: RenderedBatch, train_on: str) -> RenderedBatch:
    if train_on == "assistant":
        return out
    if train_on == "last_assistant":
        if len(out.span_row):
            last = np.r_[out.span_row[1:] != out.span_row[:-1], True]
            out.span_row, out.span_start, out.span_end = out.span_row[last], out.span_start[last], out.span_end[last]
        return out
    n = len(out.texts)
    lengths = np.fromiter((len(t) for t in out.texts), dtype=np.int64, count=n)
    keep = lengths > 0
    out.span_row = np.flatnonzero(keep).astype(np.int64)
    out.span_start = np.zeros(len(out.span_row), dtype=np.int64)
    out.span_end = lengths[keep]
    return out
