"""A drill's database on a staging server (`drills.scratch.dsn`), and what a killed drill left
there: named for this installation, so the next start drops its own and nothing else."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from core.programs import PSQL, program_path
from exporter.drills.leftovers import instance_id
from exporter.drills.scratch import DrillError, track

_SERVER_PRIVILEGES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


def staging_prefix(state_dir: str | Path) -> str:
    return f"drwatch_drill_{instance_id(state_dir)[:8]}_"


def drop_staging_leftovers(dsn: str, state_dir: str | Path) -> list[str]:
    """Drill databases (and roles) a killed drwatch of this installation left on a staging
    server: dropped. Another installation's, or a database in use by a drill now, stay."""
    prefix = staging_prefix(state_dir)
    dropped: list[str] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix]
        )]  # fmt: skip
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))  # fmt: skip
            dropped.append(name)
        roles = [r[0] for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
            [prefix.replace("drwatch_drill_", "drwatch_restore_", 1)],
        )]  # fmt: skip
        for role in roles:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    return dropped


class StagingDatabase:
    """A database of drwatch's own on a staging server, dropped afterwards. Restored as the
    configured role when it is no superuser and holds none of the server-program or server-file
    roles; a superuser makes a restoring role of its own for the drill, dropped with it."""

    def __init__(self, dsn: str, state_dir: str | Path) -> None:
        self.admin = dsn
        # Named for this installation, so the next start drops what a kill left (and only that).
        self.name = f"{staging_prefix(state_dir)}{uuid.uuid4().hex[:12]}"
        self.restorer: str | None = None  # a role made for this drill
        self._restorer_password = secrets.token_urlsafe(24)

    def start(self) -> None:
        track(self, True)
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT rolsuper, ARRAY(SELECT r FROM unnest(%s::text[]) r "
                "WHERE pg_has_role(current_user, r, 'USAGE')) FROM pg_roles "
                "WHERE rolname = current_user",
                [list(_SERVER_PRIVILEGES)],
            ).fetchone()
            superuser, privileged = (bool(row[0]), list(row[1])) if row else (False, [])
            if privileged and not superuser:
                raise DrillError(
                    f"drills.scratch.dsn's role holds {', '.join(privileged)}: a restored dump "
                    "could run programs or read the server's files; give the drill a role "
                    "without them"
                )
            owner: sql.Composable = sql.SQL("")
            if superuser:
                self.restorer = self.name.replace("drwatch_drill_", "drwatch_restore_", 1)
                # A login of its own: SET ROLE is no boundary (the dump's code could RESET it).
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(sql.Identifier(self.restorer), sql.Literal(self._restorer_password))
                )
                owner = sql.SQL(" OWNER {}").format(sql.Identifier(self.restorer))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)) + owner)

    def create_database(self, extensions: list[str] | None = None) -> str:
        return self.name

    def explain(self, exc: Exception, needed: int) -> Exception:
        return exc  # the staging server's disk is its operator's; its error says so

    def psql(self) -> str:
        return PSQL.find() or program_path(PSQL.name)

    def dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(self.admin, dbname=dbname)

    def restorer_dsn(self, dbname: str) -> str:
        if self.restorer is None:
            return self.dsn(dbname)
        return psycopg.conninfo.make_conninfo(
            self.admin, dbname=dbname, user=self.restorer, password=self._restorer_password
        )

    def close(self) -> None:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.admin, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
            if self.restorer:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.restorer))
                )
