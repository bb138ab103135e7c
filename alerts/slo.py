"""Generates alerts/slo.yml: recovery objectives run as SLOs (`make rules`).

    python -m alerts.slo > alerts/slo.yml

Per target and scenario, two service level indicators, each 1 while breached and 0 while met,
evaluated every minute:
- rpo: the exposure over its objective, or unmeasured while an objective is set (an unmeasured
  objective is an unproven one);
- rto: the last passing drill's measured RTO over its objective.
From them: the error ratio over 5m … 30d and the share within objective, the error budget
against `drwatch_slo_objective_ratio` (default 0.999 of 30 days), what is left of it, the burn
rate, the worst exposure over 30 days; and multi-window, multi-burn-rate alerts (the SRE
workbook's: page at 14.4x over 1h and 5m or 6x over 6h and 30m; ticket at 3x over 1d and 2h or
1x over 3d and 6h).

Names and labels follow Sloth's (`slo:sli_error:ratio_rate<window>`, `slo:objective:ratio`,
`slo:error_budget:ratio`, `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
`slo:period_error_budget_remaining:ratio`; `sloth_service`, `sloth_slo`, `sloth_window`), with
drwatch's `target` and `scenario` in place of `sloth_id`: Sloth's dashboards and Pyrra-style
queries read them as they read their own.
"""

from __future__ import annotations

import sys

import yaml

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
PERIOD_SECONDS = 30 * 86400
KEYS = "target, scenario, sloth_slo"
RUNBOOK = (
    "{{ or $externalLabels.drwatch_runbook "
    '"https://github.com/drwatch/drwatch/blob/main/docs/runbook.md" }}#error-budget-burn'
)
# (severity, [(long window, short window, burn rate)]): the SRE workbook's table.
# The RTO's SLI only changes with a drill: a slow restore is a ticket (DrwatchRTOExceeded), never
# a page; data at risk (the RPO) pages.
BURNS = (
    ("page", "Fast", '{sloth_slo="rpo"}', [("1h", "5m", 14.4), ("6h", "30m", 6.0)]),
    ("ticket", "Slow", "", [("1d", "2h", 3.0), ("3d", "6h", 1.0)]),
)
SLI = {
    "rpo": (
        "(drwatch_rpo_exposure_seconds > bool on(target, scenario) drwatch_rpo_objective_seconds)"
        "\nor on(target, scenario) (drwatch_rpo_objective_seconds * 0 + 1)"
    ),
    "rto": (
        "drwatch_rto_measured_seconds > bool on(target, scenario) drwatch_rto_objective_seconds"
    ),
}


def _labels(slo: str, **more: str) -> dict[str, str]:
    return {"sloth_service": "drwatch", "sloth_slo": slo, **more}


def _sli_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = [
        {"record": f"drwatch:{slo}_sli_error:ratio", "expr": expr, "labels": _labels(slo)}
        for slo, expr in SLI.items()
    ]
    for window in WINDOWS:
        rules.append({
            "record": f"slo:sli_error:ratio_rate{window}",
            "expr": " or ".join(
                f"avg_over_time(drwatch:{slo}_sli_error:ratio[{window}])" for slo in SLI
            ),
            "labels": {"sloth_window": window},
        })  # fmt: skip
        rules.append({
            "record": f"drwatch:slo_compliance:ratio_rate{window}",
            "expr": f"1 - slo:sli_error:ratio_rate{window}",
        })  # fmt: skip
    return rules


def _budget_rules() -> list[dict[str, object]]:
    objective = " or ".join(
        f"label_replace(drwatch_slo_objective_ratio and on(target, scenario) "
        f'drwatch:{slo}_sli_error:ratio, "sloth_slo", "{slo}", "", "")'
        for slo in SLI
    )
    breached = " or ".join(
        # Each minute's SLI is one sample (this group runs every minute): breached seconds.
        f"sum_over_time(drwatch:{slo}_sli_error:ratio[30d]) * 60"
        for slo in SLI
    )
    return [
        {"record": "slo:objective:ratio", "expr": objective,
         "labels": {"sloth_service": "drwatch"}},
        {"record": "slo:error_budget:ratio", "expr": "1 - slo:objective:ratio"},
        {"record": "slo:time_period:days", "expr": "slo:objective:ratio * 0 + 30"},
        {"record": "drwatch:slo_breached_seconds:sum30d", "expr": breached},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"max without (sloth_window) (slo:sli_error:ratio_rate5m)\n"
                    f"/ on({KEYS}) group_left() slo:error_budget:ratio",
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"max without (sloth_window) (slo:sli_error:ratio_rate30d)\n"
                    f"/ on({KEYS}) group_left() slo:error_budget:ratio",
        },
        # The month's budget is (1 - objective) of 30 days; breached time spends it, whether
        # or not Prometheus has 30 days of samples yet.
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - drwatch:slo_breached_seconds:sum30d\n"
                    f"/ on({KEYS}) group_left() ({PERIOD_SECONDS} * slo:error_budget:ratio)",
        },
        {
            "record": "drwatch:rpo_exposure_seconds:max_over_time30d",
            "expr": "max_over_time(drwatch_rpo_exposure_seconds[30d])",
        },
    ]  # fmt: skip


def _burn(which: str, long: str, short: str, rate: float) -> str:
    return (
        f"(\n  max without (sloth_window) (slo:sli_error:ratio_rate{long}{which})\n"
        f"  > on({KEYS}) group_left() ({rate:g} * slo:error_budget:ratio)\n"
        f"and on({KEYS})\n  max without (sloth_window) (slo:sli_error:ratio_rate{short}{which})\n"
        f"  > on({KEYS}) group_left() ({rate:g} * slo:error_budget:ratio)\n)"
    )


def _alerts() -> list[dict[str, object]]:
    alerts: list[dict[str, object]] = []
    for severity, speed, which, pairs in BURNS:
        windows = " or ".join(f"{long} and {short} at {rate:g}x" for long, short, rate in pairs)
        alerts.append({
            "alert": f"Drwatch{speed}ErrorBudgetBurn",
            "expr": "\nor\n".join(_burn(which, *pair) for pair in pairs),
            "for": "2m" if severity == "page" else "15m",
            "labels": {"severity": severity},
            "annotations": {
                "summary": "{{ $labels.target }}: the {{ $labels.scenario }} "
                           f"{{{{ $labels.sloth_slo }}}} error budget burns {speed.lower()}",
                "description": "{{ $labels.target }}'s {{ $labels.scenario }} "
                               "{{ $labels.sloth_slo | toUpper }} was outside its objective "
                               "{{ $value | humanizePercentage }} of the time lately "
                               f"({windows} the budget): at this pace the 30-day error budget "
                               "runs out early.",
                "runbook_url": RUNBOOK,
            },
        })  # fmt: skip
    return alerts


def render() -> str:
    # One group: its rules run in order each minute, so each reads what the one before it
    # recorded in the same evaluation (and the breached seconds count one sample a minute).
    doc = {
        "groups": [
            {
                "name": "drwatch-slo",
                "interval": "1m",
                "rules": [*_sli_rules(), *_budget_rules(), *_alerts()],
            }
        ]
    }
    header = (
        "# Recovery objectives as SLOs: generated by `make rules` (python -m alerts.slo) from\n"
        "# alerts/slo.py; do not edit. Sloth's names and labels (README, Objectives as SLOs).\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
