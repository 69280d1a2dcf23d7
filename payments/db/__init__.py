"""The payment system's database: one schema and migration path (schema.py) on SQLite or PostgreSQL
(engines.py, the only module where they differ)."""

from typing import Any

from payments.db.engines import Database, DatabaseError, Params, Tx, is_postgres_url, open_database


def select_in(
    db: Tx | Database, select: str, column: str, values: list[str], *, params: Params = (), tail: str = ""
) -> list[dict[str, Any]]:
    """`select ... WHERE column IN (values) tail` (AND when select has a WHERE), in chunks of 500 values.

    Any statement that answers rows: an `UPDATE ... RETURNING *` as well (`params` are those of
    `select`'s own placeholders), and `tail` an `ORDER BY ...` and a row lock, so that rows are locked
    in one order by everyone."""
    out: list[dict[str, Any]] = []
    joiner = " AND " if " WHERE " in select else " WHERE "
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        out.extend(db.all(f"{select}{joiner}{column} IN ({marks}){tail}", [*params, *chunk]))
    return out


def read_settings(db: Tx) -> dict[str, str]:
    return {r["name"]: r["value"] for r in db.all("SELECT name, value FROM settings")}


__all__ = [
    "Database",
    "DatabaseError",
    "Tx",
    "is_postgres_url",
    "open_database",
    "read_settings",
    "select_in",
]
