"""The daemon: scheduler, result store, collector and HTTP, with SIGHUP reload and SIGTERM stop."""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from checks.base import Status
from checks.support.verify import terminate_all
from core.config.loading import LoadedConfig, load_config
from core.errors import ConfigError
from core.redact import redact
from core.sharding import UNSHARDED, Shard
from exporter.drills.engine import DrillEngine
from exporter.drills.failover import FailoverObserver
from exporter.drills.metrics import DrillCollector
from exporter.drills.status import drill_rows
from exporter.remediation.engine import REMEDIATION_INPUTS, RemediationEngine
from exporter.remediation.metrics import RemediationCollector
from exporter.remediation.webhook import WEBHOOK_PATH, webhook_app
from exporter.runtime.current import Current, ReloadState, sections
from exporter.runtime.exposure_record import (
    COMPLIANCE_WINDOW,
    ExposureRecord,
    ExposureRecorder,
)
from exporter.runtime.inprocess import InProcessChecks
from exporter.runtime.jobs import Instances, build_jobs
from exporter.runtime.results import CheckResult, ResultStore
from exporter.runtime.runner import Job
from exporter.web.app import make_app, protect
from exporter.web.metrics import MetricsPage
from exporter.web.page import PageCache
from exporter.web.security import WebSecurity
from exporter.web.server import HttpServer
from exporter.workers.metrics import WorkerCollector
from exporter.workers.pool import WorkerPool

log = logging.getLogger("drwatch.daemon")


class Daemon:
    def __init__(
        self,
        config_path: str | Path,
        loaded: LoadedConfig,
        listen_address: str,
        shard: Shard = UNSHARDED,
        web_config: Path | None = None,
        workers: int = 0,
    ) -> None:
        """`web_config`: the --web.config.file (TLS, basic auth); ConfigError if it is bad.
        `workers`: processes that run the checks (0: this process runs them)."""
        self.config_path = Path(config_path)
        self.shard = shard
        self.store = ResultStore()
        self.checks_run: InProcessChecks | WorkerPool = (
            WorkerPool(workers, shard, self._deliver) if workers else InProcessChecks(self._deliver)
        )
        self._running = False
        self._lock = threading.Lock()
        self._instances: Instances = {}
        self.remediation = RemediationEngine()
        self.drills = DrillEngine()
        self.failovers = FailoverObserver()
        self.exposure_record: ExposureRecord | None = None
        self._current = self._apply(loaded)
        self.recorder = ExposureRecorder(self._record_exposures)
        self._reload = ReloadState(True, time.time())
        self.metrics = MetricsPage(self.store, self.current, self.reload_state)
        registry = CollectorRegistry(auto_describe=True)  # the smaller, per-scrape families
        registry.register(RemediationCollector(self.remediation, lambda: self._current.config))
        registry.register(DrillCollector(self.drills, lambda: self._current.config, self.failovers))
        if isinstance(self.checks_run, WorkerPool):
            registry.register(WorkerCollector(self.checks_run))
        webhook = webhook_app(self.remediation, lambda: self._current.config)
        self.web = WebSecurity(web_config)
        self.page = PageCache(
            lambda: self.metrics.render().encode() + generate_latest(registry),
            self.store.complete,
        )
        app = make_app(
            self.page,
            self.store,
            self.current,
            {WEBHOOK_PATH: webhook},
            lambda: drill_rows(self.drills, self._current.config),
            self.compliance,
        )
        self.http = HttpServer(listen_address, protect(app, self.web, {WEBHOOK_PATH}), self.web)

    def current(self) -> Current:
        return self._current

    def _record_exposures(self) -> None:
        current, record = self._current, self.exposure_record
        if record is not None:
            record.sample(current.config, current.jobs, self.store.snapshot().results, time.time())

    def compliance(self) -> dict[str, object]:
        """Each scenario's last 30 days in drwatch's own exposure record, as JSON."""
        if self.exposure_record is None:
            return {}
        now = time.time()
        found = self.exposure_record.compliance(now - COMPLIANCE_WINDOW, now)
        return {key: c.as_json() for key, c in found.items()}

    def checks(self) -> Instances:
        """The checks behind the running jobs (each keeps its state across reloads)."""
        return dict(self._instances)

    def reload_state(self) -> ReloadState:
        return self._reload

    def _apply(self, whole: LoadedConfig) -> Current:
        redact.set_secrets(whole.secrets)
        loaded = self.shard.select(whole)
        if not loaded.config.targets:
            log.warning(
                "shard %d of %d has none of the %d targets",
                self.shard.index, self.shard.total, len(whole.config.targets),
            )  # fmt: skip
        self._loaded = loaded
        jobs, self._instances = build_jobs(loaded.config, self._instances)
        self.store.configure(job.key for job in jobs)
        config = loaded.config
        self.remediation.forget(
            {t.name for t in config.targets if config.remediation_for(t).enabled}
        )
        self.drills.configure(config)
        self.failovers.configure(config.state_dir, config.drills)
        self.exposure_record = ExposureRecord(config.state_dir, config.drills.history_keep)
        for off in loaded.off:
            log.warning("section off: %s", off)
        return Current(loaded.config, tuple(jobs), sections(loaded), tuple(loaded.off), self.shard)

    def _deliver(self, job: Job, result: CheckResult) -> None:
        """A check's result, from its thread here or from a worker process's reader."""
        previous = self.store.put(result)
        self.metrics.prerender(job)  # here, as results arrive, not in the page's build
        self.page.changed()
        if previous is None and result.status != Status.OK:
            # A problem present from the first run is said too: nothing changes to log it later.
            log.warning(
                "check not OK at its first run",
                extra={
                    "target": job.target,
                    "check": job.check,
                    "new_status": result.status.name,
                    "summary": result.summary,
                },
            )
        elif previous is not None and previous.status != result.status:
            log.log(
                logging.INFO if result.status == Status.OK else logging.WARNING,
                "check status changed",
                extra={
                    "target": job.target,
                    "check": job.check,
                    "old_status": previous.status.name,
                    "new_status": result.status.name,
                    "summary": result.summary,
                },
            )
        failover = self.failovers.observe(result)
        if failover is not None:
            log.warning(
                "primary failover",
                extra={
                    "target": job.target,
                    "duration_seconds": round(failover.duration_seconds, 1),
                    "source": failover.source,
                    "detail": failover.detail,
                },
            )
        if job.check in REMEDIATION_INPUTS:
            config = self._current.config
            try:
                target = config.target(job.target)
            except KeyError:  # a reload removed it
                return
            self.remediation.run_in_background(config, target, {job.check: result})

    def start(self) -> None:
        if isinstance(self.checks_run, WorkerPool):
            # What runs here now is the page's builder, the results' readers and the HTTP
            # server: switching between them every millisecond, not every five, a scrape
            # waits less for its turn behind a page build.
            sys.setswitchinterval(0.001)
        self.page.start()
        self.http.start()
        self.checks_run.schedule(self._loaded, self._current.jobs)
        self._running = True
        self.drills.start(self._current.config)
        self.recorder.start()
        log.info(
            "drwatch started",
            extra={
                "listen_port": self.http.port,
                "checks": len(self._current.jobs),
                # What a reader of the journal asks first: is this endpoint protected?
                "tls": self.web.settings.tls is not None,
                "basic_auth": bool(self.web.settings.users),
                "client_certificates": bool(
                    self.web.settings.tls and self.web.settings.tls.verify_mode != ssl.CERT_NONE
                ),
            },
        )

    def reload(self) -> bool:
        try:
            loaded = load_config(self.config_path)
        except ConfigError as exc:
            self._reload_rejected([redact(p) for p in exc.problems])
            return False
        except Exception as exc:  # a bug in loading must not end the daemon: keep what runs
            log.exception("config reload failed")
            self._reload_rejected([f"internal error: {type(exc).__name__}"])
            return False
        with self._lock:
            self._current = self._apply(loaded)
            if self._running:
                self.checks_run.schedule(self._loaded, self._current.jobs)
        self._reload = ReloadState(True, time.time())
        self.page.rebuild()
        log.info("config reloaded", extra={"checks": len(self._current.jobs)})
        return True

    def _reload_rejected(self, problems: list[str]) -> None:
        self._reload = ReloadState(False, self._reload.last_success)
        self.page.rebuild()
        log.error(
            "config reload rejected; keeping the running config", extra={"problems": problems}
        )

    def stop(self) -> None:
        """Stops within seconds whatever is running: checks in flight are abandoned (their
        threads are daemons, their connections die with the process; workers stop theirs
        alike or are killed) and the programs they run are killed, so a store that never
        answers cannot hold a stop for its deadline."""
        self._running = False
        self.checks_run.stop()
        terminate_all()  # what a drill's verification runs here
        self.page.stop()
        self.http.stop()
        self.remediation.close()
        self.drills.stop()
        self.recorder.stop()
        log.info("drwatch stopped")

    def serve_forever(self) -> None:
        """Runs until SIGTERM or SIGINT; SIGHUP reloads, SIGUSR1/SIGUSR2 engage and release the
        remediation kill switch. The signals are blocked in every thread and taken here, one at
        a time, with sigwait: no handler runs in the middle of other code (a handler setting an
        Event can deadlock on the Event's own lock)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # before any thread starts
        self.start()
        try:
            while (signum := signal.sigwait(_SIGNALS)) not in (signal.SIGTERM, signal.SIGINT):
                if signum == signal.SIGHUP:
                    self.reload()
                    self.web.reload()
                elif signum == signal.SIGUSR1:
                    self.remediation.kill_switch.engage()
                    self.page.rebuild()
                    log.warning("remediation kill switch engaged (SIGUSR1)")
                else:
                    self.remediation.kill_switch.release()
                    self.page.rebuild()
                    log.warning("remediation kill switch released (SIGUSR2)")
        finally:
            self.stop()


_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
