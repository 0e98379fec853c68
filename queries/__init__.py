"""Named SQL queries loaded from the files under sql/.

Each query in a file starts with a header line `-- name: verb_noun` followed by a
comment line that documents it. A data module loads its file once, at import, and
names the queries and parameters it relies on, so a missing query or a renamed
placeholder fails the boot instead of a request.
"""

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Query:
    """One named SQL statement and the keyword parameters it takes."""

    name: str
    doc: str
    sql: str
    params: frozenset

    def _check(self, params):
        if set(params) != self.params:
            raise TypeError(f"query {self.name} takes {sorted(self.params)}, got {sorted(params)}")

    def execute(self, conn, **params):
        """Run the statement with exactly its declared keyword parameters; return the cursor."""
        self._check(params)
        # Without parameters the simple protocol runs, which allows several statements.
        return conn.execute(self.sql, params or None)

    def execute_script(self, conn, **params):
        """Run a script of several statements, its parameters bound client-side."""
        self._check(params)
        with psycopg.ClientCursor(conn) as cursor:
            cursor.execute(self.sql, params)

    def execute_many(self, conn, rows):
        """Run the statement once per dict of parameters, pipelined."""
        rows = list(rows)
        for params in rows:
            self._check(params)
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(self.sql, rows)

    def copy_out(self, conn, **params):
        """Start `COPY (statement) TO STDOUT` in binary; return psycopg's Copy, whose
        iteration gives one row per message as the server sends it. COPY takes no server-side
        parameters, so these are bound client-side (and the plan sees them as constants)."""
        self._check(params)
        return conn.cursor().copy(f"COPY ({self.sql}) TO STDOUT (FORMAT binary)", params)

    def all(self, conn, **params):
        """Every row of the result."""
        return self.execute(conn, **params).fetchall()

    def one(self, conn, **params):
        """The first row of the result, or None."""
        return self.execute(conn, **params).fetchone()


class QueryFileError(RuntimeError):
    """A SQL file does not hold the queries or parameters the code expects."""


def parse_queries(text):
    """Split the text of a SQL file into its named queries."""
    queries = {}
    headers = list(_HEADER.finditer(text))
    for header, following in zip(headers, headers[1:] + [None], strict=True):
        body = text[header.end() : following.start() if following else len(text)].strip()
        doc_lines = []
        for line in body.splitlines():
            if not line.startswith("--"):
                break
            doc_lines.append(line.lstrip("- ").strip())
        sql = body.rstrip().rstrip(";")
        queries[header.group(1)] = Query(
            name=header.group(1),
            doc=" ".join(doc_lines),
            sql=sql,
            params=frozenset(_PLACEHOLDER.findall(sql)),
        )
    return queries


def load_queries(filename, expected):
    """Load sql/<filename> and check it declares exactly the expected queries and parameters.

    `expected` maps each query name to the set of its parameter names. Raises
    QueryFileError at import time when the file and the code disagree.
    """
    path = SQL_DIR / filename
    if not path.is_file():
        raise QueryFileError(f"missing SQL file {path}")
    queries = parse_queries(path.read_text(encoding="utf-8"))
    for name, params in expected.items():
        if name not in queries:
            raise QueryFileError(f"{filename}: no query named {name}")
        if queries[name].params != frozenset(params):
            raise QueryFileError(
                f"{filename}: query {name} takes {sorted(queries[name].params)}, "
                f"code passes {sorted(params)}"
            )
    unused = set(queries) - set(expected)
    if unused:
        raise QueryFileError(f"{filename}: queries not used by the code: {sorted(unused)}")
    return queries


_BEFORE_EVERY_ID = "00000000-0000-0000-0000-000000000000"
# What every list statement takes besides its filters (sql/sessions.sql, sql/uploads.sql).
_WALK_PARAMS = frozenset(
    {"user_id", "key_hash", "limit", "offset", "with_total", "before_at", "before_id"}
)


class ListQuery:
    """A list statement: rows in the caller's scope, newest first (createdAt, then id),
    filtered (filters not given are None: not filtered). Every row also carries the
    matching `total` (None unless `with_total`) and `project_visible` (False when a
    `project_id` filter names a project out of scope); a page past the end is a single row
    whose `id` is None."""

    def __init__(self, filename, name, filters):
        self.filters = frozenset(filters)
        self.query = load_queries(filename, {name: _WALK_PARAMS | self.filters})[name]

    def __call__(
        self,
        conn,
        user_id,
        key_hash,
        limit,
        offset=0,
        *,
        created_to=None,
        after=None,
        with_total=True,
        **filters,
    ):
        """Start the statement for `limit` rows from `offset`, created before `created_to`
        and, in a cursor walk, after the position `after` (created_at, id); return the
        cursor. Raises TypeError for a filter the statement does not take."""
        before_at, before_id = list_bounds(created_to, after)
        walk = {"limit": limit, "offset": offset, "with_total": with_total}
        bounds = {"before_at": before_at, "before_id": before_id}
        scope = {"user_id": user_id, "key_hash": key_hash}
        return self.query.execute(
            conn, **scope, **walk, **bounds, **(dict.fromkeys(self.filters) | filters)
        )


def list_bounds(created_to=None, after=None):
    """The exclusive upper bound (before_at, before_id) of a newest-first walk, in list
    order: the end of a date window (`to`, exclusive) or the last row a cursor saw
    (`after`, as (created_at, id)), whichever comes first; (None, None) for neither."""
    bounds = [(created_to, uuid.UUID(_BEFORE_EVERY_ID))] if created_to is not None else []
    if after is not None:
        bounds.append(after)
    return min(bounds) if bounds else (None, None)
