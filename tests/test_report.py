"""`drwatch report`: the evidence report from drwatch's records, as JSON, Markdown and a
self-contained HTML page read in headless Chromium."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from core.config.drills import DrillCapacity
from exporter.drills.failover import FailoverRecord, failover_history
from exporter.drills.history import DrillRecord, drill_history
from exporter.runtime.exposure_record import ExposureRecord, ExposureSample
from tests.helpers import drwatch, write_config

DAY = 86400.0
HOSTILE = '<script>alert("x")</script>|'


def _drill(at: float, outcome: str, took: float, summary: str = "restored, checked") -> DrillRecord:
    return DrillRecord(
        target="app", scenario="full_restore", started_at=at, outcome=outcome,  # type: ignore[arg-type]
        summary=summary, duration_seconds=took, rto_objective_seconds=7200.0,
        phases={"download": took / 3, "restore": took / 3, "verify": took / 3},
        phase_bytes={"download": 10 << 30, "restore": 10 << 30},
        backup={"backup": f"app-{int(at)}.dump", "backup_bytes": 10 << 30,
                "backup_sha256": "ab" * 32, "backup_time": at - 600},
        version="0.1.0",
    )  # fmt: skip


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    """A year of records: weekly full restores over 90 days (one failed, one deferred, then a
    gap of 20 days without a pass), an exposure record, an observed failover."""
    state = tmp_path / "state"
    now = time.time()
    records = [_drill(now - 89 * DAY + week * 7 * DAY, "passed", 3000 + week * 100)
               for week in range(9)]  # fmt: skip
    records.append(_drill(now - 27 * DAY, "failed", 50.0, f"pg_restore failed: {HOSTILE}"))
    records.append(_drill(now - 26 * DAY, "deferred", 0.0, "deferred: 1 drill(s) already running"))
    records.append(_drill(now - 5 * DAY, "passed", 9000.0))  # over the 2 h objective
    measured = _drill(now - 4 * DAY, "passed", 600.0).model_copy(update={
        "scenario": "pitr", "measured_data_loss_seconds": 42.0,
        "path": {"method": "tool", "restored_by": "barman-cloud", "wal_from": "tool"}})
    records.append(measured)  # fmt: skip
    records.append(_drill(now - 200 * DAY, "passed", 1000.0))  # before the period: not counted
    drill_history(str(state), DrillCapacity()).append(records)
    record = ExposureRecord(str(state), 366 * DAY)
    minute = now - now % 60
    record.journal.append(
        [ExposureSample(t=minute - m * 60, x={"app/pitr": (900.0 if m == 10 else 30.0, 300.0)})
         for m in reversed(range(100))]  # oldest first, as recorded
    )  # fmt: skip
    failover_history(str(state), DrillCapacity()).append(
        [FailoverRecord(target="app", source="observed", started_at=now - 3 * DAY,
                        completed_at=now - 3 * DAY + 45, detail="timeline 1 to 2: at most this long")]
    )  # fmt: skip
    target = {
        "name": "app",
        "backups": {"store": "file:///b/dumps/", "wal_store": "file:///b/wal/"},
        "drills": {"scratch": {"user": "postgres"}, "full_restore": {}},
    }
    return write_config(tmp_path / "c.yml", [target], state_dir=str(state))


def _report(config: Path, fmt: str, *args: str) -> str:
    proc = drwatch("report", "--config", str(config), "--since", "90d", "--format", fmt, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_json_report_counts_measures_and_judges_the_schedule(estate: Path) -> None:
    doc = json.loads(_report(estate, "json"))
    assert doc["schema_version"] == 1 and doc["report"] == "drwatch evidence report"
    (target,) = doc["targets"]
    scenarios = {s["scenario"]: s for s in target["scenarios"]}
    full = scenarios["full_restore"]
    assert full["drills"] == {"run": 11, "passed": 10, "failed": 1, "deferred": 1}
    assert full["rto"]["worst_seconds"] == 9000.0 and full["rto"]["within_objective"] is False
    assert full["rto"]["objective_seconds"] == 7200.0
    schedule = full["schedule"]
    assert schedule["test"] == "Restore to staging" and schedule["frequency"] == "weekly"
    assert 12 <= schedule["scheduled_runs"] <= 13  # Sundays at 03:00 in 90 days
    # The last weekly pass 33 days ago, the next 5 days ago: 28 days, past the 8 days max_age.
    assert schedule["kept"] is False
    assert schedule["longest_without_pass_seconds"] == pytest.approx(28 * DAY, abs=60)
    assert full["records"][-1]["backup"]["backup_sha256"] == "ab" * 32
    pitr = scenarios["pitr"]
    assert pitr["rpo"]["worst_exposure_seconds"] == 900.0
    assert pitr["rpo"]["minutes_recorded"] == 100 and pitr["rpo"]["ratio"] == 0.99
    # measured on the copy by the heartbeat, beside the exposure inferred from the stores
    assert pitr["rpo"]["measured_loss_worst_seconds"] == 42.0
    assert pitr["records"][-1]["restore_path"]["restored_by"] == "barman-cloud"
    failover = scenarios["primary_failover"]
    assert failover["rto"]["worst_seconds"] == 45.0 and failover["rto"]["within_objective"]
    assert "exposure record covers 100 of the period's" in " ".join(doc["how_made"])
    assert doc["cannot_show"]


def test_the_markdown_report_is_tables_a_reviewer_reads(estate: Path) -> None:
    text = _report(estate, "md")
    assert text.startswith("# drwatch evidence report\n")
    row = next(line for line in text.splitlines() if line.startswith("| full_restore |"))
    assert "| Restore to staging (weekly) | 11 | 10 | 1 | 1 |" in row
    assert "| NO |" in row  # the schedule was not kept
    assert "\\|" in text and "pg_restore failed: &lt;script&gt;" in text  # text, not HTML
    assert "<script" not in text
    assert "## What it cannot show" in text
    drill = next(line for line in text.splitlines() if "barman-cloud" in line)
    assert "| 42s | barman-cloud (tool); WAL: tool |" in drill


def test_the_html_report_is_self_contained_and_reads_in_chromium(
    estate: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    _report(estate, "html", "--output", str(page))
    html = page.read_text()
    assert "<script" not in html.replace("&lt;script", "")  # the hostile summary is text
    assert "http://" not in html and "https://" not in html  # nothing fetched
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "<h1>drwatch evidence report</h1>" in dom
    summary = dom[dom.index('<table class="summary">') :]
    row = next(r for r in summary.split("<tr") if "<td>full_restore</td>" in r)
    assert 'class="bad"' in row and "<td>NO</td>" in row
    assert "&lt;script&gt;" in dom and "<script>alert" not in dom


def test_a_backup_key_is_text_in_the_markdown_report(tmp_path: Path) -> None:
    """Markdown is rendered where reports are read (a wiki, a ticket): a backup key that holds
    HTML or a link stays text."""
    state = tmp_path / "state"
    key = '<img src=x onerror="alert(1)">[click](javascript:alert(2))`code`.dump'
    record = _drill(time.time() - DAY, "passed", 100.0)
    record.backup["backup"] = key
    drill_history(str(state), DrillCapacity()).append([record])
    target = {"name": "app", "backups": {"store": "file:///b/dumps/"},
              "drills": {"scratch": {"user": "postgres"}, "full_restore": {}}}  # fmt: skip
    text = _report(write_config(tmp_path / "c.yml", [target], state_dir=str(state)), "md")
    assert "<img" not in text and "&lt;img src=x onerror=" in text
    assert " [click](" not in text and "\\[click\\](" in text  # no link: brackets escaped
    assert "\\`code\\`" in text


@pytest.mark.parametrize("records", ["none", "one failed"])
def test_no_pass_in_the_period_is_never_a_kept_schedule(tmp_path: Path, records: str) -> None:
    """No drill in a week's report (shorter than max_age), or one failed drill in 90 days: the
    schedule was not kept, and the whole period went without a pass."""
    state = tmp_path / "state"
    if records == "one failed":
        drill_history(str(state), DrillCapacity()).append(
            [_drill(time.time() - 1.0, "failed", 1.0, "pg_restore failed")]
        )
    target = {"name": "app", "backups": {"store": "file:///b/dumps/"},
              "drills": {"scratch": {"user": "postgres"}, "full_restore": {}}}  # fmt: skip
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(state))
    since = "7d" if records == "none" else "90d"
    proc = drwatch("report", "--config", str(config), "--since", since, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (full,) = [s for s in json.loads(proc.stdout)["targets"][0]["scenarios"]
               if s["scenario"] == "full_restore"]  # fmt: skip
    assert full["schedule"]["kept"] is False and full["schedule"]["passes"] == 0
    period = 7 * DAY if records == "none" else 90 * DAY
    assert full["schedule"]["longest_without_pass_seconds"] == pytest.approx(period, abs=120)


def test_the_report_opens_with_a_verdict_per_target_and_scenario(estate: Path) -> None:
    """First the verdict: the objective, met or not, tested on schedule or not, how much of the
    period the record covers. The pitr exposure record covers 100 minutes of 90 days, one over
    the objective: not met; full_restore's worst RTO is over its 2 h: not met, schedule not
    kept; a scenario the record never covered is not measured, never 100% within."""
    doc = json.loads(_report(estate, "json"))
    verdicts = {(v["target"], v["scenario"]): v for v in doc["verdicts"]}
    full = verdicts[("app", "full_restore")]
    assert (full["rto"], full["tested_on_schedule"]) == ("not met", False)
    assert full["rpo"] == "not measured" and full["record_coverage"] == 0.0
    pitr = verdicts[("app", "pitr")]
    assert pitr["rpo"] == "not met" and pitr["rpo_objective_seconds"] == 300.0
    assert pitr["record_coverage"] == pytest.approx(100 / (90 * 1440), rel=0.01)
    text = _report(estate, "md")
    head = text.split("## Verdict", 1)[1].split("\n## ", 1)[0]
    assert text.index("## Verdict") < text.index("## app")
    assert ("- app / full_restore: RTO 2h not met; RPO 1h not measured; tested on schedule: "
            "NO; the record covers 0.0% of the period") in head, head
    full_row = next(r for r in text.splitlines() if r.startswith("| full_restore |"))
    assert "| not measured |" in full_row and "100.000%" not in full_row


def _ed25519(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / "sign.pem", tmp_path / "sign.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return private, public


def test_a_signed_report_verifies_with_an_independent_dsse_verifier_and_ours(
    estate: Path, tmp_path: Path
) -> None:
    """`--sign` writes an in-toto Statement about the JSON in a DSSE envelope: securesystemslib's
    verifier accepts its signature, its subject is the report's SHA-256, `drwatch report
    verify` says verified; a changed report, or another key, is NOT verified."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    private, public = _ed25519(tmp_path)
    report = tmp_path / "report.json"
    _report(estate, "json", "--output", str(report), "--sign", str(private))
    attestation = tmp_path / "report.json.intoto.jsonl"
    envelope = json.loads(attestation.read_text())
    pub = serialization.load_pem_public_key(public.read_bytes())
    key = SSlibKey.from_crypto(pub, keyid=envelope["signatures"][0]["keyid"], scheme="ed25519")  # type: ignore[arg-type]
    assert Envelope.from_dict(envelope).verify([key], 1)  # raises when it does not verify
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(
        report.read_bytes()).hexdigest()  # fmt: skip
    assert statement["predicate"]["report"] == "drwatch evidence report"
    ok = drwatch("report", "verify", str(attestation), "--key", str(public))
    assert ok.returncode == 0 and ok.stdout.startswith("verified: "), ok.stdout + ok.stderr
    (tmp_path / "other").mkdir()
    _, other = _ed25519(tmp_path / "other")
    wrong = drwatch("report", "verify", str(attestation), "--key", str(other))
    assert wrong.returncode == 1 and "no signature by this key verifies" in wrong.stdout
    report.write_text(report.read_text().replace('"passed": 10', '"passed": 11'))
    changed = drwatch("report", "verify", str(attestation), "--key", str(public))
    assert changed.returncode == 1 and "changed since it was signed" in changed.stdout
    refused = drwatch("report", "--config", str(estate), "--sign", str(private))
    assert refused.returncode == 2 and "--format json --output FILE" in refused.stderr


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_an_edited_or_deleted_drill_record_is_said_by_the_report(
    estate: Path, tamper: str
) -> None:
    """The drill history's lines are chained: a failed drill's record rewritten as passed, or
    removed, breaks the chain after it, and the report's verdict says so first."""
    history = estate.parent / "state" / "drill-history.jsonl"
    lines = history.read_text().splitlines(keepends=True)
    assert all('"prev": "' in line for line in lines)
    doc = json.loads(_report(estate, "json"))
    assert doc["history_integrity"]["intact"] is True
    failed = next(i for i, line in enumerate(lines) if '"outcome": "failed"' in line)
    if tamper == "edit":
        lines[failed] = lines[failed].replace('"outcome": "failed"', '"outcome": "passed"')
    else:
        del lines[failed]
    history.write_text("".join(lines))
    doc = json.loads(_report(estate, "json"))
    assert doc["history_integrity"]["intact"] is False
    assert doc["history_integrity"]["breaks"][0]["line"] == failed + (2 if tamper == "edit" else 1)
    text = _report(estate, "md")
    verdict = text.split("## Verdict", 1)[1]
    assert verdict.lstrip().startswith("- WARNING: the drill history was changed after it was")


def test_controls_point_at_their_records_and_pictures_draw_rto_and_exposure(
    estate: Path, tmp_path: Path
) -> None:
    """The controls table maps SOC 2 A1.2/A1.3 and ISO/IEC 27001:2022 A.8.13/A.5.30 to what
    the records show, each linking the scenario's section; each scenario's pictures are inline
    SVG a browser draws: a bar per judged drill (red for the failed one) under the RTO line,
    the exposure line under the RPO line."""
    doc = json.loads(_report(estate, "json"))
    controls = {(c["framework"], c["control"]): c for c in doc["controls"]}
    assert set(controls) == {("SOC 2", "A1.2"), ("SOC 2", "A1.3"),
                             ("ISO/IEC 27001:2022", "A.8.13"), ("ISO/IEC 27001:2022", "A.5.30")}
    restore = next(x for x in controls[("SOC 2", "A1.3")]["evidence"]
                   if x["scenario"] == "full_restore")  # fmt: skip
    assert restore["shows"].startswith("10 of 11 drills passed; RTO not met")
    assert "| SOC 2 | A1.3 |" in _report(estate, "md")
    page = tmp_path / "report.html"
    _report(estate, "html", "--output", str(page))
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    section = dom.split('id="records-app-full_restore"', 1)[1].split("</div>", 1)[0]
    assert section.count('class="drill passed"') == 10 and section.count('class="drill failed"') == 1
    assert 'class="objective"' in section and "RTO 2h" in section
    exposure = dom.split('id="records-app-pitr"', 1)[1].split("</div>", 1)[0]
    assert 'class="exposure"' in exposure and "RPO 5m" in exposure
    assert '<a href="#records-app-full_restore">app / full_restore</a>' in dom
    assert "<script" not in page.read_text().replace("&lt;script", "")
