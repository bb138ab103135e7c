from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, free_port, wait_until
from sandbox.redisserver import RedisServer
from sandbox.seed import seed
from tests.remediation import GRANTS, Sessions

# The files whose tests take longest, handed to the workers first: none of them starts last and
# leaves the other workers idle at the end (xdist's loadfile hands files out in this order).
# By their measured time, slowest first (`pytest --durations=0`, summed by file).
SLOW_FILES = ("test_drill_pitr.py", "test_e2e_paging.py", "test_daemon.py", "test_dashboards.py",
              "test_drill_full_restore.py", "test_drill_engine.py", "test_cli_validate.py",
              "test_report.py", "test_backups.py", "test_alerts.py", "test_web_security.py",
              "test_remediation_postgres.py", "test_compression.py", "test_drill_aws.py",
              "test_workers.py")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES)))  # stable: files kept


def pytest_configure(config: pytest.Config) -> None:
    """A base temporary directory of this session's own, outside /tmp/pytest-of-<user>: every
    pytest session that starts resets that shared directory to mode 0700, which cuts the drills'
    scratch OS user off from a drill in progress in another session (a CI run beside a
    developer's). Workers get theirs from the controller."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="drwatch-tests-", dir="/tmp")
        config._drwatch_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "_drwatch_basetemp", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A fresh primary archiving into its own directory."""
    c = PgCluster().init(ARCHIVE_COPY).start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def production() -> Iterator[PgCluster]:
    """A production server whose `app` database holds the seed data: what drills restore and
    compare their copies with (one per test module)."""
    c = PgCluster().init(None).start()
    try:
        c.execute("CREATE DATABASE app")
        with c.connect("app") as conn:
            seed(conn, debates=2000)
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[PgCluster]:
    """One cluster for tests that only read or own their tables."""
    c = PgCluster().init(None).start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own (not started: each test starts it as it needs)."""
    r = RedisServer()
    try:
        yield r
    finally:
        r.destroy()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone S3/RDS server over HTTP on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def primary() -> Iterator[PgCluster]:
    """A primary with a streaming standby (a walsender that must survive everything)."""
    c = PgCluster().init(ARCHIVE_COPY, max_connections="40").start()
    standby = c.create_standby().start()
    try:
        c.execute(GRANTS)
        wait_until(
            lambda: c.execute("SELECT count(*) FROM pg_stat_replication")[0][0] == 1,
            30,
            what="standby streaming",
        )
        yield c
    finally:
        standby.destroy()
        c.destroy()


@pytest.fixture
def sessions(primary: PgCluster) -> Iterator[Sessions]:
    s = Sessions(primary)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def dumps(shared_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real pg_dump -Fc, the same truncated, and the same with one byte flipped in its data."""
    shared_cluster.execute("DROP DATABASE IF EXISTS app")
    shared_cluster.execute("CREATE DATABASE app")
    shared_cluster.execute(
        "CREATE TABLE debates AS SELECT g AS id, md5(g::text) AS title FROM generate_series(1, 50000) g",
        "app",
    )
    good = shared_cluster.dump("app", shared_cluster.backups / "dumps").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # the middle of the file is table data, well past the TOC
    return {"good": good, "truncated": good[: len(good) * 2 // 3], "flipped": bytes(flipped)}


@pytest.fixture
def db(shared_cluster: PgCluster) -> Iterator[PgCluster]:
    """A fresh database per test on the module's cluster."""
    shared_cluster.execute("DROP DATABASE IF EXISTS verify")
    shared_cluster.execute("CREATE DATABASE verify")
    yield shared_cluster
    shared_cluster.execute("DROP DATABASE IF EXISTS verify WITH (FORCE)")
