"""The real backup tools beside a test cluster: pgBackRest with a local repository, barman-cloud
archiving to moto's S3 server."""

from __future__ import annotations

from pathlib import Path

from sandbox.pgcluster import PgCluster

STANZA = "main"


class PgBackRest:
    """A local pgBackRest repository for `cluster` (create it before `cluster.init`)."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.root = cluster.root / "pgbackrest"
        for path in (self.root, self.root / "repo", self.root / "log", self.root / "lock"):
            cluster.make_server_dir(path)
        self.repo = self.root / "repo"
        self.conf = self.root / "pgbackrest.conf"
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.repo}\n"
            "repo1-retention-full=4\n"
            f"log-path={self.root / 'log'}\n"
            f"lock-path={self.root / 'lock'}\n"
            "log-level-console=warn\n"
            "start-fast=y\n"
            f"[{STANZA}]\n"
            f"pg1-path={cluster.datadir}\n"
            f"pg1-port={cluster.port}\n"
            f"pg1-socket-path={cluster.socket_dir}\n"
        )

    @property
    def archive_command(self) -> str:
        return f"pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p"

    @property
    def archive(self) -> Path:
        """The stanza's WAL archive: what a wal_store points at."""
        return self.repo / "archive" / STANZA

    def run(self, *args: str) -> str:
        return self.cluster.run_as_server_user(
            "pgbackrest", f"--config={self.conf}", f"--stanza={STANZA}", *args, timeout=300
        )


AWS_ENV = ("env", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing-secret",
           "AWS_DEFAULT_REGION=us-east-1")  # fmt: skip


class BarmanCloud:
    """barman-cloud archiving `cluster`'s WAL to moto's S3 server and taking base backups there."""

    def __init__(self, cluster: PgCluster, endpoint: str, bucket: str, server: str = "pg") -> None:
        self.cluster = cluster
        self.endpoint = endpoint
        self.url = f"s3://{bucket}/barman"
        self.server = server

    @property
    def archive_command(self) -> str:
        return " ".join(
            [*AWS_ENV, "barman-cloud-wal-archive", "--endpoint-url", self.endpoint, "--gzip",
             self.url, self.server, "%p"]
        )  # fmt: skip

    def backup(self) -> None:
        self.cluster.run_as_server_user(
            *AWS_ENV, "barman-cloud-backup", "--endpoint-url", self.endpoint, "--gzip",
            "--immediate-checkpoint", "-h", str(self.cluster.socket_dir), "-p", str(self.cluster.port), "-U", "postgres",
            self.url, self.server,
        )  # fmt: skip


BARMAN_VENV = Path(__file__).resolve().parent.parent / ".venv-barman"


class Barman:
    """A barman server beside `cluster` (barman from PyPI in `.venv-barman`, as `make test`
    installs it): WAL archived into its incoming directory, backups by pg_basebackup
    (backup_method postgres), run as the cluster's OS user, which barman_user names."""

    def __init__(self, cluster: PgCluster, server: str = "pg") -> None:
        self.cluster = cluster
        self.server = server
        self.home = cluster.root / "barman"
        cluster.make_server_dir(self.home)
        self.incoming = self.home / server / "incoming"
        for directory in (self.home / server, self.incoming):
            cluster.make_server_dir(directory)
        self.program = BARMAN_VENV / "bin" / "barman"
        assert self.program.exists(), f"{self.program}: run make test (it installs barman)"
        self.conf = cluster.root / "barman.conf"
        # The restoring host's config: the same server, its log and locks somewhere it writes.
        self.restore_conf = cluster.root / "barman-restore.conf"
        for path, extra in ((self.conf, ""), (self.restore_conf, "barman_lock_directory = /tmp\n")):
            log = self.home / "barman.log" if path == self.conf else "/tmp/barman.log"
            path.write_text(
                f"[barman]\nbarman_home = {self.home}\nbarman_user = postgres\n"
                f"log_file = {log}\n{extra}"
                f"[{server}]\ndescription = drwatch test\n"
                f"conninfo = host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres\n"
                f"streaming_conninfo = host=127.0.0.1 port={cluster.port} user=postgres\n"
                "backup_method = postgres\narchiver = on\n"
            )
            path.chmod(0o644)

    @property
    def archive_command(self) -> str:
        return f"test ! -f {self.incoming}/%f && cp %p {self.incoming}/%f"

    def run(self, *args: str) -> str:
        return self.cluster.run_as_server_user(str(self.program), "-c", str(self.conf), *args,
                                               timeout=300)  # fmt: skip

    def backup(self) -> None:
        self.run("cron")
        self.run("switch-wal", "--force", "--archive", "--archive-timeout", "60", self.server)
        self.run("backup", "--wait", self.server)

    def archive_now(self) -> None:
        """The archived WAL moved from incoming into the server's wals/, as `barman cron` does."""
        self.run("cron")
