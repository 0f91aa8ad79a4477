"""The few SQL fragments SQLite and PostgreSQL spell differently. Every other statement in the store is written in
the SQL both accept (ON CONFLICT upserts with qualified columns, CASE instead of boolean arithmetic, RETURNING,
"user" quoted), so a query reads the same whichever database runs it."""

from __future__ import annotations

import functools
import re
from typing import Any


class SQLiteSQL:
    name = "sqlite"
    # SQLite locks the whole file for a write transaction (BEGIN IMMEDIATE): row locks have nothing to add.
    for_update = ""
    skip_locked = ""

    @staticmethod
    def contains(haystack: str, needle: str) -> str:
        return f"instr({haystack}, {needle}) > 0"

    @staticmethod
    def group_concat(expr: str, sep: str) -> str:
        return f"group_concat({expr}, '{sep}')"

    @staticmethod
    def in_json_list(value: str, column: str) -> str:
        """True when the JSON array in `column` holds the integer `value`."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) je WHERE je.value = {value})"

    @staticmethod
    def julianday(expr: str) -> str:
        return f"julianday({expr})"

    @staticmethod
    def search(words: list[str]) -> tuple[str, list[Any]]:
        """All of `words` in the post, the draft or the author: the FTS5 trigram index when every word is long
        enough for it (three characters), else a scan (e.g. 配達, two characters)."""
        if all(len(w) >= 3 for w in words):
            match = " AND ".join('"' + w.replace('"', '""') + '"' for w in words)
            return "ac.id IN (SELECT rowid FROM action_search WHERE action_search MATCH ?)", [match]
        return _scan(SQLiteSQL.contains, words)


class PostgresSQL:
    name = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    @staticmethod
    def contains(haystack: str, needle: str) -> str:
        return f"strpos({haystack}, {needle}) > 0"

    @staticmethod
    def group_concat(expr: str, sep: str) -> str:
        return f"string_agg({expr}, '{sep}')"

    @staticmethod
    def in_json_list(value: str, column: str) -> str:
        return f"(({column})::jsonb @> to_jsonb(({value})::bigint))"

    @staticmethod
    def julianday(expr: str) -> str:
        return f"(extract(epoch FROM ({expr})::timestamptz) / 86400.0 + 2440587.5)"

    @staticmethod
    def search(words: list[str]) -> tuple[str, list[Any]]:
        # pg_trgm's GIN indexes (when the extension could be created) serve these ILIKEs; any length works.
        parts, params = [], []
        for w in words:
            pattern = "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            parts.append("(p.text ILIKE ? OR ac.text ILIKE ? OR (a.handle || ' ' || a.name) ILIKE ?)")
            params += [pattern] * 3
        return " AND ".join(parts), params


def _scan(contains, words: list[str]) -> tuple[str, list[Any]]:
    parts, params = [], []
    for w in words:
        parts.append("(" + " OR ".join(contains(f"lower({col})", "?") for col in
                                       ("p.text", "ac.text", "a.handle || ' ' || a.name")) + ")")
        params += [w.lower()] * 3
    return " AND ".join(parts), params


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%|[^'\"?%]+")


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """SQLite's ? placeholders as psycopg's %s (a literal % doubled), leaving quoted text alone."""
    out = []
    for tok in _TOKENS.findall(sql):
        if tok == "?":
            out.append("%s")
        elif tok == "%":
            out.append("%%")
        elif tok[0] == "'" and "%" in tok:
            out.append(tok.replace("%", "%%"))
        else:
            out.append(tok)
    return "".join(out)
