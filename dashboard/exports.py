"""Exports: every table and filtered view of the dashboard as CSV or Parquet, at ``/export/<view>.<csv|parquet>``,
behind the same login as the pages (the login guards every route of the server).

Bounded and streamed: a view is one bounded query (at most ``EXPORT_CAP`` rows), read through a server-side
cursor in chunks and written out chunk by chunk — CSV rows, or one Parquet row group per chunk — so neither
the dashboard's memory nor the response waits for the whole file. The file's name says the view, its filter
and how many rows it holds (counted before the download starts).
"""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import flask
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from psycopg_pool import ConnectionPool

from dashboard import queries
from dashboard.deal_query import DealFilters, page_query
from dashboard.inputs import InputError, choice_value, text_value
from dashboard.page import Context
from dashboard.pages.market import AXES, PERIODS, SEGMENTS
from dashboard.widgets import EXPORT_CAP

CHUNK: Final = 5_000
FORMATS: Final = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
# Postgres type OID → Arrow type; any other type is written as text.
ARROW_TYPES: Final = {16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(),
                      701: pa.float64(), 1700: pa.float64(), 1082: pa.date32(), 1184: pa.timestamp("us", tz="UTC"),
                      17: pa.binary()}  # fmt: skip


class ExportError(InputError):
    """A request the exports cannot answer: its status and one line saying what was expected."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Export:
    view: str
    query: sql.SQL | sql.Composed
    params: list[Any]
    described: str  # the filter in words

    def counted(self) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM ({}) AS exported").format(self.query)


def text_arg(args: Mapping[str, str], name: str, longest: int = 100) -> str | None:
    return text_value(name, args.get(name), longest)


def deals_export(args: Mapping[str, str]) -> Export:
    """The deal finder's view: the same filters as its page (``since``: arrived within that many days)."""
    filters = DealFilters.parsed(args)
    query, params = page_query(filters, EXPORT_CAP, 0)
    return Export("deals", query, params, filters.described())


def choice_arg(args: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    return choice_value(name, args.get(name, default), choices)


def market_export(args: Mapping[str, str]) -> Export:
    """The Market page's table: one segment's periods."""
    axis = choice_arg(args, "axis", tuple(dict(AXES)), "posted")
    kind = choice_arg(args, "period", tuple(dict(PERIODS)), "week")
    segment = choice_arg(args, "segment", tuple(dict(SEGMENTS)), "all")
    value = "" if segment == "all" else (text_arg(args, "value") or "")
    if segment != "all" and not value:
        raise ExportError(400, f"value: expected the {segment} to export, got nothing")
    params = [axis, segment, value, kind, EXPORT_CAP]
    described = f"axis={axis} period={kind} segment={segment}" + (f" value={value}" if value else "")
    return Export("market", sql.SQL(queries.MARKET_PERIODS), params, described)


def valuations_export(args: Mapping[str, str]) -> Export:
    """The look-up's valuations of one listing, every model version."""
    source, listing_id = text_arg(args, "source"), text_arg(args, "id")
    if not source or not listing_id:
        given = f"{'a source' if source else 'no source'} and {'an id' if listing_id else 'no id'}"
        raise ExportError(400, f"source and id: expected both (the listing's site and its id), got {given}")
    return Export("valuations", sql.SQL(queries.VALUATIONS), [source, listing_id],
                  f"source={source} id={listing_id}")  # fmt: skip


def table_export(view: str, statement: str, params: list[Any]) -> Callable[[Mapping[str, str]], Export]:
    """A page's table as it is, newest first, up to EXPORT_CAP rows."""
    return lambda _: Export(view, sql.SQL(statement), params, "newest")


VIEWS: Final[dict[str, Callable[[Mapping[str, str]], Export]]] = {
    "deals": deals_export, "market": market_export, "valuations": valuations_export,
    "latest": table_export("latest", queries.LATEST_PREDICTIONS, [EXPORT_CAP]),
    "dead-letters": table_export("dead-letters", queries.DEAD_LETTERS, [4096, EXPORT_CAP]),
    "model-events": table_export("model-events", queries.MODEL_EVENTS, [EXPORT_CAP]),
    "drift-windows": table_export("drift-windows", queries.DRIFT_WINDOWS, [EXPORT_CAP]),
}  # fmt: skip


def file_name(export: Export, rows: int, fmt: str) -> str:
    """``deals_make=ford_ratings=great,good_1234-rows.csv``: safe characters only, the filter cut at 120."""
    described = re.sub(r"[^A-Za-z0-9=,.+-]+", "_", export.described)[:120]
    return f"{export.view}_{described}_{rows}-rows.{fmt}"


def cell(value: Any) -> Any:
    """A value as text for CSV (and for Parquet columns of types it has no mapping for)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value.isoformat() if hasattr(value, "isoformat") else value


def chunks(pool: ConnectionPool, export: Export) -> Iterator[tuple[list[tuple[str, int]], list[tuple[Any, ...]]]]:
    """The rows in chunks through a server-side cursor, each with the columns (name, type OID)."""
    with pool.connection() as conn, conn.cursor(name="export") as cur:
        cur.execute(export.query, export.params)
        rows = cur.fetchmany(CHUNK)
        columns = [(d.name, d.type_code) for d in cur.description or []]
        yield columns, rows  # even when empty: a file with its header (CSV) or its schema (Parquet)
        while rows := cur.fetchmany(CHUNK):
            yield columns, rows


def csv_stream(parts: Iterator[tuple[list[tuple[str, int]], list[tuple[Any, ...]]]]) -> Iterator[bytes]:
    header_sent = False
    for columns, rows in parts:
        out = io.StringIO()
        writer = csv.writer(out)
        if not header_sent:
            writer.writerow([name for name, _ in columns])
            header_sent = True
        writer.writerows([cell(v) for v in row] for row in rows)
        yield out.getvalue().encode()


class Drain(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they come (Parquet needs a position, not a file)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def arrow_batch(columns: list[tuple[str, int]], rows: list[tuple[Any, ...]]) -> pa.Table:
    arrays = []
    for i, (_, oid) in enumerate(columns):
        kind = ARROW_TYPES.get(oid)
        values = [row[i] for row in rows]
        arrays.append(
            pa.array(values, type=kind)
            if kind
            else pa.array([None if v is None else str(cell(v)) for v in values], type=pa.string())
        )
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def parquet_stream(parts: Iterator[tuple[list[tuple[str, int]], list[tuple[Any, ...]]]]) -> Iterator[bytes]:
    """One row group per chunk, each sent as soon as it is written; the footer last."""
    sink, writer = Drain(), None
    for columns, rows in parts:
        batch = arrow_batch(columns, rows)
        writer = writer or pq.ParquetWriter(sink, batch.schema)
        writer.write_table(batch)
        yield sink.take()
    if writer is not None:
        writer.close()
        yield sink.take()


BUSY: Final = 2  # exports at once: each holds a thread and a database connection while it streams


def counted(pool: ConnectionPool, export: Export) -> int:
    with pool.connection() as conn:
        row = conn.execute(export.counted(), export.params).fetchone()
    return int(row[0]) if row else 0


def built(view: str, fmt: str, args: Mapping[str, str]) -> Export:
    if fmt not in FORMATS:
        raise ExportError(400, f"format: expected {' or '.join(FORMATS)}, got {fmt[:20]!r}")
    if view not in VIEWS:
        raise ExportError(404, f"view: expected one of {', '.join(VIEWS)}, got {view[:40]!r}")
    return VIEWS[view](args)


def released(parts: Iterator[bytes], slot: threading.BoundedSemaphore) -> Iterator[bytes]:
    """The body, giving the export's slot back when it ends (sent, failed or abandoned by the client)."""
    try:
        yield from parts
    finally:
        slot.release()


def register(server: flask.Flask, ctx: Context) -> None:
    """``GET /export/<view>.<csv|parquet>?<filters>`` on the dashboard's server (behind its login)."""
    slot = threading.BoundedSemaphore(BUSY)

    @server.get("/export/<view>.<fmt>")
    def export(view: str, fmt: str) -> flask.Response:
        if not slot.acquire(blocking=False):
            return flask.Response(f"exports: expected at most {BUSY} at once, got another; try again shortly\n",
                                  status=429, mimetype="text/plain", headers={"Retry-After": "5"})  # fmt: skip
        try:
            found = built(view, fmt, flask.request.args)
            rows = counted(ctx.pool, found)
        except InputError as exc:
            slot.release()
            return flask.Response(f"{exc}\n", status=exc.status, mimetype="text/plain")
        except BaseException:
            slot.release()
            raise
        stream = (csv_stream if fmt == "csv" else parquet_stream)(chunks(ctx.pool, found))
        disposition = f'attachment; filename="{file_name(found, rows, fmt)}"'
        return flask.Response(flask.stream_with_context(released(stream, slot)), mimetype=FORMATS[fmt],
                              headers={"Content-Disposition": disposition, "X-Rows": str(rows)})  # fmt: skip
