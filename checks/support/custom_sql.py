"""Custom SQL metrics (`verification.custom`), query-exporter style: one row per series, a value
column and the label columns the config declares."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from psycopg import sql

from checks.base import Observation
from checks.support.pg import Row, query_error
from core.config.postgres import CustomQuery, VerificationOptions
from core.errors import CheckError
from core.metrics import MetricSpec

MAX_CUSTOM_SERIES = 1000
MAX_LABEL_LENGTH = 256  # a label value is a name, not a document: every scrape carries it


def custom_spec(query: CustomQuery) -> MetricSpec:
    """A custom metric the config declares, as a declaration like every other metric's."""
    return MetricSpec(f"drwatch_custom_{query.name}", query.type, query.help, tuple(query.labels))


def custom_specs(options: VerificationOptions) -> tuple[MetricSpec, ...]:
    return tuple(custom_spec(q) for q in options.custom)


def measure_custom(conn: psycopg.Connection[Row], c: CustomQuery, obs: Observation) -> int:
    """Runs the query and adds its series to `obs`; returns how many.

    The query runs inside drwatch's own (`SELECT value, left(label, N+1) ... FROM (query)`),
    through a server-side cursor: at most MAX_CUSTOM_SERIES + 1 rows, with label values cut
    by the server, ever reach drwatch, whatever the query returns. Two rows with the same labels
    (which Prometheus would silently drop to one) are an error, not a metric.
    """
    spec = custom_spec(c)
    query = sql.SQL(c.sql.strip().rstrip(";"))
    try:
        with conn.cursor() as cur:  # its columns, without running it (LIMIT 0)
            cur.execute(sql.SQL("SELECT * FROM (\n{}\n) AS q LIMIT 0").format(query))
            columns = [d.name for d in cur.description or ()]
        missing = [col for col in (c.value, *c.labels) if col not in columns]
        if missing:
            raise _config(
                c,
                f"the query returns no column(s) {', '.join(missing)} "
                f"(it returns {', '.join(columns) or 'nothing'})",
            )
        bounded = sql.SQL("SELECT {} FROM (\n{}\n) AS q").format(
            sql.SQL(", ").join(
                [
                    sql.SQL("q.{0} AS {0}").format(sql.Identifier(c.value)),
                    *(
                        sql.SQL("left(q.{0}::text, {1}) AS {0}").format(
                            sql.Identifier(label), MAX_LABEL_LENGTH + 1
                        )
                        for label in c.labels
                    ),
                ]
            ),
            query,
        )
        with conn.cursor(name="drwatch_custom") as cur:
            cur.execute(bounded)
            rows = cur.fetchmany(MAX_CUSTOM_SERIES + 1)
    except psycopg.Error as exc:
        raise query_error(exc, f"custom metric {c.name}") from None
    if len(rows) > MAX_CUSTOM_SERIES:
        raise _config(c, f"more than {MAX_CUSTOM_SERIES} rows")
    series: dict[tuple[str, ...], tuple[float, dict[str, str]]] = {}
    for row in rows:
        value = row[c.value]
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise _config(c, f"column {c.value} is not numeric ({str(value)[:40]!r})")
        labels = {label: str(row[label]) for label in c.labels}
        for label, text in labels.items():
            if len(text) > MAX_LABEL_LENGTH:
                raise _config(c, f"column {label} holds a value over {MAX_LABEL_LENGTH} characters")
        key = tuple(labels.values())
        if key in series:
            raise _config(c, f"two rows have the same labels {labels}")
        series[key] = (float(value), labels)
    for value, labels in series.values():  # all or nothing: a broken item adds no sample
        obs.add(spec, value, **labels)
    obs.values[f"custom.{c.name}.series"] = len(rows)
    return len(rows)


def _config(c: CustomQuery, problem: str) -> CheckError:
    return CheckError("config", f"custom metric {c.name}: {problem}")
