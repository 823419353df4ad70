"""BigQuery's language, executed by ZetaSQL (Google's reference implementation, as WASM).

ZetaSQL analyzes and evaluates queries but keeps no data: this runner holds the tables and
views itself. Every statement is first analyzed by ZetaSQL against the current catalog (so a
statement BigQuery's language rejects fails here); CREATE TABLE records a schema, INSERT and
DELETE are carried out by evaluating their VALUES and WHERE parts as queries, CREATE VIEW
keeps the view's analyzed SQL, and a query that reads a view evaluates the view first.

ZetaSQL's SimpleCatalog has no nested catalogs: `raw.people` is registered as one name, which
is how sqlanon's BigQuery dialect writes paths (one backtick-quoted identifier).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.bigquery import named_parameters

DIALECT = "bigquery"
_EPOCH = dt.date(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NANO = Decimal(10) ** 9


@dataclass
class _Table:
    columns: list[tuple[str, Any]]  # (name, zetasql Type)
    rows: list[list[Any]] = field(default_factory=list)  # zetasql Values


@dataclass
class _View:
    sql: str
    columns: list[tuple[str, Any]]


def _start_with_compilation_cache() -> None:
    """ZetaSQL's WASM module takes ~25 s to compile. wasmtime can cache the compiled code on
    disk, but zetasql's client does not ask it to; this turns the cache on and lets one process
    at a time compile (others wait, then load the cached code in under a second)."""
    import fcntl
    import os
    from pathlib import Path

    import zetasql.core.wasm_client as wasm_client

    original = wasm_client.Config
    if not getattr(original, "_sqlanon_cached", False):

        def cached_config() -> Any:
            config = original()
            config.cache = True
            return config

        cached_config._sqlanon_cached = True  # type: ignore[attr-defined]
        wasm_client.Config = cached_config
    lock_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sqlanon"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "zetasql.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        from zetasql.core.local_service import ZetaSqlLocalService

        ZetaSqlLocalService.get_instance()


class ZetaSQLEngine:
    dialect = DIALECT

    def __init__(self) -> None:
        _start_with_compilation_cache()
        try:
            from zetasql.api import Analyzer, CatalogBuilder, PreparedQuery, TableBuilder
            from zetasql.types import (
                AnalyzerOptions,
                LanguageOptions,
                TypeKind,
                Value,
                ZetaSQLBuiltinFunctionOptions,
            )
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(f"the zetasql package is not installed: {exc}") from None
        self._Analyzer, self._CatalogBuilder = Analyzer, CatalogBuilder
        self._PreparedQuery, self._TableBuilder = PreparedQuery, TableBuilder
        self._AnalyzerOptions, self._TypeKind, self._Value = AnalyzerOptions, TypeKind, Value
        self._language = LanguageOptions.maximum_features()
        self._builtins = ZetaSQLBuiltinFunctionOptions(language_options=self._language)
        from zetasql.core.local_service import ZetaSqlLocalService

        self._service = ZetaSqlLocalService.get_instance()
        self._registered: dict[Any, int] = {}
        self.tables: dict[str, _Table] = {}
        self._snapshot: dict[str, list[list[Any]]] | None = None  # rows as of BEGIN
        self.views: dict[str, _View] = {}
        self.time_zone = "UTC"
        self.session_parameters: dict[str, Any] = {}

    # -- the engine protocol -----------------------------------------------------------------

    def placeholder(self) -> Sql:
        return Sql("?")

    def set_time_zone(self, tz: str) -> None:
        self.time_zone = tz

    def set_epoch(self, epoch: int) -> None:
        """BigQuery reads the epoch from the query parameter @sqlanon_epoch."""
        self.session_parameters["sqlanon_epoch"] = epoch

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        sql, named = self._name_parameters(sql, params)
        resolved = self._analyze(sql, named)
        kind = type(resolved).__name__
        if kind == "ResolvedCreateTableStmt":
            name = ".".join(resolved.name_path)
            mode = getattr(resolved.create_mode, "name", "")
            if name in self.tables and mode == "CREATE_IF_NOT_EXISTS":
                return
            if name in self.tables and mode != "CREATE_OR_REPLACE":
                raise ValueError(f"table {name} already exists")
            self.tables[name] = _Table([(c.name, c.type) for c in resolved.column_definition_list])
        elif kind == "ResolvedCreateViewStmt":
            name = ".".join(resolved.name_path)
            self.views[name] = _View(
                resolved.sql, [(c.name, c.column.type) for c in resolved.output_column_list]
            )
        elif kind == "ResolvedInsertStmt":
            self._insert(sql, named)
        elif kind == "ResolvedDeleteStmt":
            self._delete(sql, named)
        elif kind == "ResolvedQueryStmt":
            self._evaluate(sql, named)
        elif kind == "ResolvedBeginStmt":
            self._snapshot = {n: list(t.rows) for n, t in self.tables.items()}
        elif kind == "ResolvedCommitStmt":
            self._snapshot = None
        elif kind == "ResolvedRollbackStmt":
            for n, rows in (self._snapshot or {}).items():
                if n in self.tables:
                    self.tables[n].rows = rows
            self._snapshot = None
        elif kind == "ResolvedDropStmt" and str(resolved.object_type).upper() == "SCHEMA":
            # schemas have no bookkeeping of their own: dropping one drops what it holds
            prefix = ".".join(resolved.name_path) + "."
            for objects in (self.tables, self.views):
                for name in [n for n in objects if n.startswith(prefix)]:
                    del objects[name]
        elif kind != "ResolvedCreateSchemaStmt":  # schemas need no bookkeeping here
            raise NotImplementedError(f"the ZetaSQL runner does not carry out {kind}")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sql, named = self._name_parameters(sql, params)
        _, rows = self._evaluate(sql, named)
        return [tuple(_to_python(v) for v in row) for row in rows]

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        """(name, BigQuery type name) of a table's or a view's columns."""
        name = ".".join(relation)
        found = self.tables.get(name) or self.views.get(name)
        if found is None:
            return []
        return [(n, _type_name(t)) for n, t in found.columns]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        table = self.tables[".".join(relation)]
        kinds = [t.type_kind for _, t in table.columns]
        for row in rows:
            table.rows.append([self._to_value(v, k) for v, k in zip(row, kinds, strict=True)])

    def close(self) -> None:
        for catalog_id in self._registered.values():
            self._service.unregister_catalog(registered_id=catalog_id)
        self._registered.clear()
        self.tables.clear()
        self.views.clear()

    # -- analysis and evaluation -----------------------------------------------------------------

    def _options(self, named: dict[str, Any]) -> Any:
        from zetasql.types import AnalyzerOptions

        params = [
            AnalyzerOptions.QueryParameter(name=k, type=self._type_of(v)) for k, v in named.items()
        ]
        return self._AnalyzerOptions(
            language_options=self._language,
            query_parameters=params,
            default_timezone=self.time_zone,
        )

    def _catalog(self, names: set[str]) -> Any:
        """A catalog of the tables and views a statement names, with the builtin functions."""
        builder = self._CatalogBuilder("sqlanon").with_builtin_functions(self._builtins)
        for name in sorted(names):
            source = self.tables.get(name) or self.views.get(name)
            if source is not None:
                tb = self._TableBuilder(name)
                for col, typ in source.columns:
                    tb.add_column(col, typ)
                builder.add_table(tb.build())
        return builder.build()

    def _registered_catalog(self, names: set[str]) -> int:
        """For analysis, catalogs are registered once per distinct set of schemas and reused
        by id: sending the builtin function set costs ~30 ms a request. (Evaluation cannot
        reuse them: a registered catalog's table content cannot change.)"""
        key = tuple(
            (n, tuple((c, repr(t)) for c, t in s.columns))
            for n in sorted(names)
            if (s := self.tables.get(n) or self.views.get(n)) is not None
        )
        cached = self._registered.get(key)
        if cached is None:
            response = self._service.register_catalog(simple_catalog=self._catalog(names))
            cached = self._registered[key] = response.registered_id
        return cached

    def _analyze(self, sql: str, named: dict[str, Any]) -> Any:
        response = self._service.analyze(
            sql_statement=sql,
            options=self._options(named),
            registered_catalog_id=self._registered_catalog(_referenced(sql)),
        )
        return response.resolved_statement

    def _evaluate(
        self, sql: str, named: dict[str, Any], materialized: dict[str, _Table] | None = None
    ) -> tuple[list[Any], list[list[Any]]]:
        from zetasql.types import TableContent, TableData

        materialized = dict(materialized or {})
        referenced = _referenced(sql)
        for name in referenced:
            if name in self.views and name not in materialized:
                view = self.views[name]
                _, rows = self._evaluate(view.sql, {}, materialized)
                materialized[name] = _Table(view.columns, rows)
        sources = {**self.tables, **materialized}
        content = {
            name: TableContent(
                table_data=TableData(row=[TableData.Row(cell=row) for row in t.rows])
            )
            for name, t in sources.items()
            if name in referenced
        }
        from zetasql.types import Parameter

        catalog = self._catalog(referenced)

        def prepare(text: str) -> Any:
            return (
                self._PreparedQuery.builder()
                .set_sql(text)
                .set_analyzer_options(self._options(named))
                .set_catalog(catalog)
                .set_table_content(content)
                .prepare()
            )

        query = prepare(sql)
        columns = query.columns
        stamps = [
            i for i, c in enumerate(columns) if c.type.type_kind == self._TypeKind.TYPE_TIMESTAMP
        ]
        if stamps:
            # zetasql's Python wrapper drops TIMESTAMP values from results: read them as
            # microseconds since the epoch instead, then rebuild them
            query.close()
            picks = [
                f"UNIX_MICROS(q.`{c.name}`)" if i in stamps else f"q.`{c.name}`"
                for i, c in enumerate(columns)
            ]
            query = prepare(f"SELECT {', '.join(picks)} FROM ({sql}) AS q")
        parameters = [Parameter(name=k, value=self._to_value(v, None)) for k, v in named.items()]
        try:
            response = query.execute(parameters=parameters)
        finally:
            query.close()
        data = response.content.table_data if response.content is not None else None
        rows = [list(r.cell) for r in data.row] if data is not None else []
        for row in rows:
            for i in stamps:
                micros = row[i].int64_value
                row[i] = (
                    self._Value()
                    if micros is None
                    else self._Value(
                        timestamp_value=_timestamp_message(
                            _EPOCH_UTC + dt.timedelta(microseconds=micros)
                        )
                    )
                )
        return columns, rows

    # -- DML ------------------------------------------------------------------------------------

    def _insert(self, sql: str, named: dict[str, Any]) -> None:
        tree = sqlglot.parse_one(sql, read=DIALECT)
        target = tree.this
        names = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
        table_name = _table_name(target.this if isinstance(target, exp.Schema) else target)
        table = self.tables[table_name]
        if not isinstance(tree.expression, exp.Values):  # INSERT ... SELECT: run the query
            _, result = self._evaluate(_query_part(sql), named)
            width = len(result[0]) if result else 0
        else:
            result, width = self._values(tree, named)  # type: ignore[arg-type]  # sqlglot's Expr
        for cells in result:
            cells = cells[:width]
            if names is None:
                table.rows.append(cells)
                continue
            by_name = dict(zip(names, cells, strict=True))
            # INSERT coerces to the column's type (an INT64 into a FLOAT64 column, ...)
            table.rows.append(
                [
                    self._to_value(_to_python(by_name[col]), typ.type_kind)
                    if col in by_name
                    else self._Value()
                    for col, typ in table.columns
                ]
            )

    def _values(self, tree: exp.Expression, named: dict[str, Any]) -> tuple[list[Any], int]:
        """Every VALUES row evaluated in one query, in order."""
        selects = [
            "SELECT "
            + ", ".join(
                f"{e.sql(dialect=DIALECT)} AS c{i}"
                for i, e in enumerate([*row.expressions, exp.Literal.number(n)])
            )
            for n, row in enumerate(tree.expression.expressions)
        ]
        width = len(tree.expression.expressions[0].expressions)
        _, result = self._evaluate(
            f"SELECT * FROM ({' UNION ALL '.join(selects)}) ORDER BY c{width}", named
        )
        return result, width

    def _delete(self, sql: str, named: dict[str, Any]) -> None:
        tree = sqlglot.parse_one(sql, read=DIALECT)
        table_name = _table_name(tree.this)
        where = tree.args["where"].this.sql(dialect=DIALECT)
        quoted = sqlglot.exp.to_identifier(table_name, quoted=True).sql(dialect=DIALECT)
        _, kept = self._evaluate(f"SELECT * FROM {quoted} WHERE ({where}) IS NOT TRUE", named)
        self.tables[table_name].rows = kept

    # -- values -----------------------------------------------------------------------------------

    def _name_parameters(self, sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        """`?` placeholders become @p0, @p1, … as the product's BigQuery connection names
        them; session parameters (set_epoch) are passed along to every statement."""
        text, named = named_parameters(sql, params)
        return text, {**self.session_parameters, **named}

    def _type_of(self, v: Any) -> Any:
        from zetasql.types import Type

        kinds = {
            bool: "TYPE_BOOL",
            int: "TYPE_INT64",
            str: "TYPE_STRING",
            bytes: "TYPE_BYTES",
            float: "TYPE_DOUBLE",
            type(None): "TYPE_STRING",
        }
        return Type(type_kind=getattr(self._TypeKind, kinds[type(v)]))

    def _to_value(self, v: Any, kind: Any) -> Any:
        Value, K = self._Value, self._TypeKind
        if v is None:
            return Value()
        if isinstance(v, bool):
            return Value(bool_value=v)
        if isinstance(v, int) and kind in (None, K.TYPE_INT64):
            return Value(int64_value=v)
        if isinstance(v, int | float | Decimal) and kind == K.TYPE_NUMERIC:
            return Value(
                numeric_value=_numeric_bytes(Decimal(repr(v) if isinstance(v, float) else v))
            )
        if isinstance(v, float) or kind == K.TYPE_DOUBLE:
            return Value(double_value=float(v))
        if isinstance(v, str):
            return Value(string_value=v)
        if isinstance(v, bytes):
            return Value(bytes_value=v)
        if isinstance(v, dt.datetime):
            if v.tzinfo is not None:
                return Value(timestamp_value=_timestamp_message(v))
            return Value(
                datetime_value=Value.Datetime(
                    bit_field_datetime_seconds=_datetime_bits(v), nanos=v.microsecond * 1000
                )
            )
        if isinstance(v, dt.date):
            return Value(date_value=(v - _EPOCH).days)
        raise TypeError(f"cannot pass {type(v).__name__} to ZetaSQL")


def _timestamp_message(value: dt.datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    message = Timestamp()
    message.FromDatetime(value.astimezone(dt.timezone.utc).replace(tzinfo=None))
    return message


def _query_part(sql: str) -> str:
    """The query of `INSERT INTO t (columns) <query>`, as written: from the first SELECT or
    WITH outside the column list's parentheses."""
    depth = 0
    for token in sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and kind in (
            TokenType.SELECT,
            TokenType.WITH,
        ):
            return sql[token.start :]
    raise ValueError("no query in the INSERT")


def _referenced(sql: str) -> set[str]:
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError:
        return set()
    return {_table_name(t) for t in tree.find_all(exp.Table)}


def _table_name(t: exp.Expression) -> str:
    parts = [p.name for p in (t.args.get("catalog"), t.args.get("db"), t.this) if p is not None]
    return ".".join(parts)


def _numeric_bytes(d: Decimal) -> bytes:
    """ZetaSQL's NUMERIC wire form: value × 10^9 as minimal little-endian two's complement."""
    with localcontext() as ctx:  # NUMERIC has 38 digits; the default context rounds to 28
        ctx.prec = 80
        n = int((d * _NANO).to_integral_value())
    length = max(1, (n.bit_length() + 8) // 8)
    return n.to_bytes(length, "little", signed=True)


def _datetime_bits(v: dt.datetime) -> int:
    return (
        (v.year << 26)
        | (v.month << 22)
        | (v.day << 17)
        | (v.hour << 12)
        | (v.minute << 6)
        | v.second
    )


def _to_python(v: Any) -> Any:
    if v.int64_value is not None:
        return v.int64_value
    if v.string_value is not None:
        return v.string_value
    if v.bool_value is not None:
        return v.bool_value
    if v.double_value is not None:
        return v.double_value
    if v.bytes_value is not None:
        return v.bytes_value
    if v.date_value is not None:
        return _EPOCH + dt.timedelta(days=v.date_value)
    if v.numeric_value is not None:
        with localcontext() as ctx:
            ctx.prec = 80
            return Decimal(int.from_bytes(v.numeric_value, "little", signed=True)) / _NANO
    if v.datetime_value is not None:
        bits = v.datetime_value.bit_field_datetime_seconds
        return dt.datetime(
            (bits >> 26) & 0x3FFF,
            (bits >> 22) & 0xF,
            (bits >> 17) & 0x1F,
            (bits >> 12) & 0x1F,
            (bits >> 6) & 0x3F,
            bits & 0x3F,
            (v.datetime_value.nanos or 0) // 1000,
        )
    if v.timestamp_value is not None:
        ts = v.timestamp_value
        if isinstance(ts, dt.datetime):
            return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
        if hasattr(ts, "ToDatetime"):
            return ts.ToDatetime().replace(tzinfo=dt.timezone.utc)
        seconds = getattr(ts, "seconds", 0) or 0
        nanos = getattr(ts, "nanos", 0) or 0
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc) + dt.timedelta(
            microseconds=nanos // 1000
        )
    return None


def _type_name(t: Any) -> str:
    """TYPE_INT64 → INT64: the name BigQuery's catalog shows."""
    kind = getattr(t.type_kind, "name", None) or str(t.type_kind)
    return kind.removeprefix("TYPE_")
