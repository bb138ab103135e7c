"""Custom SQL metrics (`verification.custom`), query-exporter style: one row per series, a value
column and the label columns the config declares."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from checks.base import Observation
from checks.support.pg import Row, query_error
from core.config.postgres import CustomQuery, VerificationOptions
from core.errors import CheckError
from core.metrics import MetricSpec

MAX_CUSTOM_SERIES = 1000


def custom_spec(query: CustomQuery) -> MetricSpec:
    """A custom metric the config declares, as a declaration like every other metric's."""
    return MetricSpec(f"drwatch_custom_{query.name}", query.type, query.help, tuple(query.labels))


def custom_specs(options: VerificationOptions) -> tuple[MetricSpec, ...]:
    return tuple(custom_spec(q) for q in options.custom)


def measure_custom(conn: psycopg.Connection[Row], c: CustomQuery, obs: Observation) -> int:
    """Runs the query and adds its series to `obs`; returns how many."""
    spec = custom_spec(c)
    try:
        with conn.cursor() as cur:
            cur.execute(c.sql.encode())  # the user's SQL, as is (bytes: not a LiteralString)
            columns = [d.name for d in cur.description or ()]
            missing = [col for col in (c.value, *c.labels) if col not in columns]
            if missing:
                raise CheckError(
                    "config",
                    f"custom metric {c.name}: the query returns no column(s) "
                    f"{', '.join(missing)} (it returns {', '.join(columns) or 'nothing'})",
                )
            rows = cur.fetchmany(MAX_CUSTOM_SERIES + 1)
    except psycopg.Error as exc:
        raise query_error(exc, f"custom metric {c.name}") from None
    if len(rows) > MAX_CUSTOM_SERIES:
        raise CheckError("config", f"custom metric {c.name}: more than {MAX_CUSTOM_SERIES} rows")
    for row in rows:
        value = row[c.value]
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise CheckError(
                "config", f"custom metric {c.name}: column {c.value} is not numeric ({value!r})"
            )
        obs.add(spec, float(value), **{label: str(row[label]) for label in c.labels})
    obs.values[f"custom.{c.name}.series"] = len(rows)
    return len(rows)
