"""`--db` → a connection: the one place that knows which engine a URL names, used by every
command that reads or writes a warehouse (deploy, apply, keys, risk, utility, tune, drift,
budget). Each engine's driver is an optional extra; a missing one is a one-line error naming
it, and a read-only command never creates a database.

    shop.duckdb, duckdb:shop.duckdb, :memory:      DuckDB (embedded; the default)
    postgresql://user@host:5432/db                 PostgreSQL (psycopg)
    snowflake://user@account/database/schema?warehouse=WH&role=R
                                                   Snowflake (snowflake-connector-python); the
                                                   password from SNOWFLAKE_PASSWORD, never the URL
    bigquery://project?location=EU                 BigQuery (google-cloud-bigquery); credentials
                                                   from Application Default Credentials
    spark://local                                  a local Spark session (pyspark)
    sc://host:15002                                a Spark Connect server (pyspark[connect])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlanon.warehouse import Engine

# scheme → (what it is, the extra that installs its driver)
EXTRAS = {
    "postgresql": ("PostgreSQL", "postgres"),
    "postgres": ("PostgreSQL", "postgres"),
    "snowflake": ("Snowflake", "snowflake"),
    "bigquery": ("BigQuery", "bigquery"),
    "spark": ("Spark", "spark"),
    "sc": ("Spark Connect", "spark"),
}
# the client settings a bigquery:// URL may carry as query parameters (endpoint: an emulator's
# address, used with anonymous credentials)
BIGQUERY_SETTINGS = ("location", "endpoint")
# the connector settings a snowflake:// URL may carry as query parameters
SNOWFLAKE_SETTINGS = ("warehouse", "role", "authenticator", "private_key_file", "host", "port")


class ConnectError(ValueError):
    """--db names nothing this installation can open; the message says what to do."""


def connect(url: str, create: bool = False) -> Engine:
    """The engine `url` names. Only commands that write (`create`) may make a new DuckDB
    file: a read-only command given a mistyped path would otherwise measure an empty database
    and report every source missing."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    try:
        if scheme in ("postgresql", "postgres"):
            from sqlanon.warehouse.postgres import PostgresEngine

            return PostgresEngine(url)
        if scheme == "snowflake":
            from sqlanon.warehouse.snowflake import SnowflakeEngine

            return SnowflakeEngine(**snowflake_args(url))
        if scheme == "bigquery":
            from sqlanon.warehouse.bigquery import BigQueryEngine

            return BigQueryEngine(bigquery_client(url))
        if scheme in ("spark", "sc"):
            from sqlanon.warehouse.spark import SparkEngine, connect_session, local_session

            return SparkEngine(local_session() if scheme == "spark" else connect_session(url))
    except ImportError as exc:
        what, extra = EXTRAS[scheme]
        raise ConnectError(
            f"--db {scheme}://… needs the {what} driver ({exc.name or exc}): "
            f"pip install 'sqlanon[{extra}]'"
        ) from None
    if scheme:
        raise ConnectError(
            f"--db {url!r}: unknown scheme {scheme}://; expected a DuckDB file or one of "
            + ", ".join(f"{s}://" for s in EXTRAS)
        )
    return _duckdb(url.removeprefix("duckdb:"), create)


def _duckdb(path: str, create: bool) -> Engine:
    from sqlanon.warehouse.duckdb import DuckDBEngine

    if not create and path != ":memory:" and not Path(path).exists():
        raise ConnectError(f"no database at {path} (a DuckDB file, or a URL: see --help)")
    return DuckDBEngine(path)


def snowflake_args(url: str) -> dict[str, Any]:
    """snowflake://user@account/database/schema?warehouse=…&role=… → the connector's
    arguments. A password in the URL is refused (it would sit in shell history and CI logs);
    it comes from SNOWFLAKE_PASSWORD, or the URL names another `authenticator`."""
    parts = urlsplit(url)
    if parts.password:
        raise ConnectError(
            "--db snowflake://: put the password in SNOWFLAKE_PASSWORD, not in the URL "
            "(it would be kept in shell history and logs)"
        )
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not parts.hostname or len(path) > 2:
        raise ConnectError(
            f"--db {url!r}: expected snowflake://user@account/database[/schema][?warehouse=…]"
        )
    args: dict[str, Any] = {"account": parts.hostname}
    if parts.username:
        args["user"] = unquote(parts.username)
    if path:
        args["database"] = path[0]
    if len(path) > 1:
        args["schema"] = path[1]
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name not in SNOWFLAKE_SETTINGS:
            raise ConnectError(
                f"--db snowflake://…?{name}=: not a setting sqlanon passes on; "
                f"expected one of {', '.join(SNOWFLAKE_SETTINGS)}"
            )
        args[name] = value
    if "SNOWFLAKE_PASSWORD" in os.environ:
        args["password"] = os.environ["SNOWFLAKE_PASSWORD"]
    return args


def bigquery_client(url: str) -> Any:
    """bigquery://project?location=…: a client of that project. Credentials are Application
    Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, a service's own);
    `endpoint=http://host:port` points the client at an emulator, with anonymous
    credentials. Nothing secret is read from the URL."""
    parts = urlsplit(url)
    if parts.username or parts.password or parts.path.strip("/") or not parts.hostname:
        raise ConnectError(f"--db {url!r}: expected bigquery://project[?location=…]")
    settings = dict(parse_qsl(parts.query, keep_blank_values=False))
    unknown = sorted(set(settings) - set(BIGQUERY_SETTINGS))
    if unknown:
        raise ConnectError(
            f"--db bigquery://…?{unknown[0]}=: not a setting sqlanon passes on; "
            f"expected one of {', '.join(BIGQUERY_SETTINGS)}"
        )
    from google.cloud import bigquery

    args: dict[str, Any] = {"project": parts.hostname, "location": settings.get("location")}
    if "endpoint" in settings:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        args["client_options"] = ClientOptions(api_endpoint=settings["endpoint"])
        args["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return bigquery.Client(**args)


def database_errors() -> tuple[type[Exception], ...]:
    """The error classes of the drivers loaded in this process (a driver not loaded cannot
    have raised): what a command reports as a database error instead of a traceback."""
    import sys

    import duckdb

    errors: list[type[Exception]] = [duckdb.Error]
    if "psycopg" in sys.modules:
        errors.append(sys.modules["psycopg"].Error)
    if "snowflake.connector" in sys.modules:
        from snowflake.connector.errors import Error as SnowflakeError

        errors.append(SnowflakeError)
    if "google.cloud.bigquery" in sys.modules:
        from google.api_core.exceptions import GoogleAPIError

        errors.append(GoogleAPIError)
    if "pyspark" in sys.modules:
        from pyspark.errors import PySparkException

        errors.append(PySparkException)
    return tuple(errors)
