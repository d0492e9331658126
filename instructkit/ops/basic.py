"""Simple row-local operators every pipeline starts with: normalize text, drop empty turns,
validate roles, filter by length.

They prove the operator core and fix the most common defects of raw instruction data
(stray whitespace, mixed Unicode forms, empty turns, conversations that cannot be trained on).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from instructkit import messages as msg
from instructkit.ops.base import Decision, Operator, register
from instructkit.schema import ROLES

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


@register
@dataclass
class Normalize(Operator):
    """Unicode normalization and whitespace cleanup of every turn's content.

    NFC (default) only composes characters; NFKC also folds compatibility forms (full-width
    letters, ligatures), which is what dedup keys want but can change meaning in maths/code.
    """

    name = "normalize"
    kind = "map"
    writes = ("messages",)

    unicode: str = "NFC"  # NFC | NFKC | none
    strip: bool = True
    collapse_spaces: bool = True  # runs of spaces/tabs inside a line -> one space (code indents kept)
    max_blank_lines: int = 2
    remove_control: bool = True
    lowercase_roles: bool = True

    def __post_init__(self) -> None:
        if self.unicode not in ("NFC", "NFKC", "NFD", "NFKD", "none"):
            raise ValueError(f"unicode must be NFC, NFKC, NFD, NFKD or none, got {self.unicode!r}")

    def process(self, batch: pa.Table) -> pa.Table:
        col = msg._chunk(batch.column("messages"))
        flat = pc.list_flatten(col)
        role, content = flat.field("role"), flat.field("content").fill_null("")
        content = self._clean(content)
        if self.strip:
            content = pc.utf8_trim_whitespace(content)
        if self.lowercase_roles:
            role = pc.utf8_trim_whitespace(pc.utf8_lower(role.fill_null("")))
        if col.null_count or not len(col):  # null conversations come back as empty lists, as msg.rebuild makes them
            rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
            new = msg.rebuild(col, rows, role, content, batch.num_rows)
        else:  # same turns per row: reuse the list offsets instead of re-deriving them per turn
            offsets = col.offsets
            if col.offset or (len(offsets) and offsets[0].as_py()):
                offsets = pc.subtract(offsets, offsets[0])
            struct = pa.StructArray.from_arrays([role.cast(pa.string()), content.cast(pa.string())],
                                                names=["role", "content"])
            new = pa.ListArray.from_arrays(offsets.cast(pa.int32()), struct)
        return batch.set_column(batch.schema.get_field_index("messages"), "messages", new)

    def _suspect_pattern(self) -> str:
        """One regex that matches every text some cleanup rule (other than trim) could change.

        It may match more than needed (any tab, CR or control byte), never less: rows it does not
        match are left as they are, which is what makes skipping them exact.
        """
        parts = [r"[\x00-\x09\x0b-\x1f\x7f]"]  # control chars, tab, CR
        if self.collapse_spaces:
            parts += ["  ", " \n"]
        if self.max_blank_lines >= 0:
            parts.append("\n" * (self.max_blank_lines + 2))
        return "|".join(parts)

    def _clean(self, content: pa.Array) -> pa.Array:
        """Run the rules only on the turns that need them, then put those back in place.

        Most turns of real data are ASCII without control bytes, space runs or blank-line runs;
        one cheap regex match finds the others. Non-ASCII turns always take the full path
        (Unicode normalization may create spaces, e.g. NFKC maps U+3000 to a space).
        """
        need = pc.match_substring_regex(content, self._suspect_pattern())
        if self.unicode != "none":
            need = pc.or_(need, pc.invert(pc.string_is_ascii(content)))
        mask = need.to_numpy(zero_copy_only=False)
        k = int(mask.sum())
        if k == 0:
            return content
        if k * 2 > len(mask):  # most turns need work: no point in gathering and scattering
            return self._rules(content)
        idx = np.flatnonzero(mask)
        fixed = self._rules(content.take(pa.array(idx)))
        return pc.replace_with_mask(content, pa.array(mask), fixed)

    def _rules(self, content: pa.Array) -> pa.Array:
        if self.unicode != "none":
            content = pc.utf8_normalize(content, form=self.unicode)
        if self.remove_control:
            content = pc.replace_substring_regex(content, _CONTROL, "")
        content = pc.replace_substring(content, "\r\n", "\n")
        content = pc.replace_substring(content, "\r", "\n")
        if self.collapse_spaces:
            # Only collapse runs *after* a non-space character: leading indentation (code) stays.
            content = pc.replace_substring_regex(content, r"(\S)[ \t]{2,}", r"\1 ")
            content = pc.replace_substring_regex(content, r"[ \t]+\n", "\n")
        if self.max_blank_lines >= 0:
            limit = "\n" * (self.max_blank_lines + 1)
            content = pc.replace_substring_regex(content, "\n{%d,}" % (self.max_blank_lines + 2), limit)
        return content


@register
@dataclass
class DropEmptyTurns(Operator):
    """Remove turns whose content is empty; reject rows left without a user or assistant turn.

    An empty assistant turn would train the model to answer with nothing, and an empty user turn
    teaches it to answer a question nobody asked.
    """

    name = "drop_empty_turns"
    kind = "filter"
    writes = ("messages",)

    keep_empty_system: bool = False

    def process(self, batch: pa.Table) -> Decision:
        col = batch.column("messages")
        rows, role, content = msg.flatten(col)
        nonempty = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(content.fill_null(""))), 0).to_numpy(
            zero_copy_only=False
        )
        if self.keep_empty_system:
            nonempty |= pc.equal(role, "system").fill_null(False).to_numpy(zero_copy_only=False)
        keep_turn = nonempty
        new = msg.rebuild(col, rows[keep_turn], role.filter(pa.array(keep_turn)), content.filter(pa.array(keep_turn)), batch.num_rows)
        out = batch.set_column(batch.schema.get_field_index("messages"), "messages", new)
        n_user = msg.count_roles(new, "user")
        n_asst = msg.count_roles(new, "assistant")
        total = pc.list_value_length(new).to_numpy(zero_copy_only=False)
        reasons = np.where(total == 0, "empty_conversation", np.where(n_asst == 0, "no_assistant_turn", "no_user_turn"))
        keep = (n_user > 0) & (n_asst > 0)
        return Decision.from_mask(out, keep, reasons)


@register
@dataclass
class ValidateRoles(Operator):
    """Reject conversations whose role sequence a chat template cannot render faithfully.

    Accepted shape: optional system turn first, then user, assistant, user, ... (tool turns may
    follow an assistant turn when `allow_tool`), ending with an assistant turn.
    """

    name = "validate_roles"
    kind = "filter"

    allow_tool: bool = True
    require_alternation: bool = True
    require_final_assistant: bool = True

    def process(self, batch: pa.Table) -> Decision:
        col = batch.column("messages")
        n = batch.num_rows
        rows, role, _ = msg.flatten(col)
        pos = msg.turn_index(col)
        lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
        df = pl.DataFrame({"row": rows, "pos": pos, "role": pl.from_arrow(role).fill_null("")})
        allowed = list(ROLES) if self.allow_tool else ["system", "user", "assistant"]
        reason = np.full(n, None, dtype=object)

        def mark(mask_rows: np.ndarray, code: str) -> None:
            sel = mask_rows[reason[mask_rows] == None]  # noqa: E711 - first reason wins
            reason[sel] = code

        mark(np.flatnonzero(lengths == 0), "empty_conversation")
        bad_role = df.filter(~pl.col("role").is_in(allowed))["row"].unique().to_numpy()
        mark(bad_role, "unknown_role")
        late_system = df.filter((pl.col("role") == "system") & (pl.col("pos") > 0))["row"].unique().to_numpy()
        mark(late_system, "misplaced_system")
        body = df.filter(pl.col("role") != "system").with_columns(
            pl.col("role").shift(1).over("row").alias("prev"), pl.col("pos").rank("ordinal").over("row").alias("k")
        )
        first = body.filter(pl.col("k") == 1)
        mark(first.filter(pl.col("role") != "user")["row"].to_numpy(), "first_turn_not_user")
        if self.require_alternation:
            same = body.filter(
                (pl.col("role") == pl.col("prev")) & pl.col("role").is_in(["user", "assistant"])
            )["row"].unique().to_numpy()
            mark(same, "roles_not_alternating")
            if self.allow_tool:
                orphan_tool = body.filter((pl.col("role") == "tool") & ~pl.col("prev").is_in(["assistant", "tool"]))
                mark(orphan_tool["row"].unique().to_numpy(), "tool_without_call")
        counts_a = msg.count_roles(col, "assistant")
        mark(np.flatnonzero(counts_a == 0), "no_assistant_turn")
        if self.require_final_assistant:
            last = body.group_by("row").agg(pl.col("role").sort_by("pos").last())
            mark(last.filter(pl.col("role") != "assistant")["row"].to_numpy(), "ends_without_assistant")
        keep = np.array([r is None for r in reason], dtype=bool)
        return Decision.from_mask(batch, keep, reason)


@register
@dataclass
class LengthFilter(Operator):
    """Reject rows whose user/assistant text or turn count is outside the given bounds.

    Writes `chars_user`, `chars_assistant` and `n_turns` so thresholds can be re-tuned from the
    annotated output without recomputing.
    """

    name = "length_filter"
    kind = "filter"
    writes = ("chars_user", "chars_assistant", "n_turns")

    min_user_chars: int = 1
    max_user_chars: int | None = None
    min_assistant_chars: int = 1
    max_assistant_chars: int | None = None
    min_turns: int = 2
    max_turns: int | None = None

    def process(self, batch: pa.Table) -> Decision:
        col = batch.column("messages")
        cu = pc.utf8_length(msg.role_text(col, ["user"], sep="")).to_numpy(zero_copy_only=False)
        ca = pc.utf8_length(msg.role_text(col, ["assistant"], sep="")).to_numpy(zero_copy_only=False)
        nt = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
        out = (
            batch.append_column("chars_user", pa.array(cu, pa.int64()))
            .append_column("chars_assistant", pa.array(ca, pa.int64()))
            .append_column("n_turns", pa.array(nt, pa.int64()))
        )
        inf = np.iinfo(np.int64).max
        checks = [
            (cu < self.min_user_chars, "user_too_short"),
            (cu > (self.max_user_chars or inf), "user_too_long"),
            (ca < self.min_assistant_chars, "assistant_too_short"),
            (ca > (self.max_assistant_chars or inf), "assistant_too_long"),
            (nt < self.min_turns, "too_few_turns"),
            (nt > (self.max_turns or inf), "too_many_turns"),
        ]
        reason = np.full(batch.num_rows, None, dtype=object)
        for bad, code in reversed(checks):  # first check in the list wins
            reason[bad] = code
        keep = np.array([r is None for r in reason], dtype=bool)
        return Decision.from_mask(out, keep, reason)
