"""The few panel shapes drwatch's dashboards use, on grafana-foundation-sdk's builders.

Every panel queries `${datasource}` and filters on `target=~"$target"`; every dashboard has
those two variables, a stable uid, and panel ids assigned in order.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
TARGET = 'target=~"$target"'

PanelBuilder = cogbuilder.Builder[dashboard.Panel]


def q(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    return query


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=v, color=c) for v, c in steps])
    )


GREEN_RED = thresholds((None, "green"), (1, "red"))  # 0 fine, anything above is a problem


def states(mapping: dict[str, tuple[str, str]]) -> list[dashboard.ValueMapping]:
    """Value → (text, colour): 1/0 flags and status codes shown as words."""
    return [
        dashboard.ValueMap(
            options={
                value: dashboard.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(mapping.items())
            }
        )
    ]


def stat_panel(
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str = "short",
    steps: dash.ThresholdsConfig | None = None,
    mappings: list[dashboard.ValueMapping] | None = None,
    w: int = 6,
    h: int = 5,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(steps or thresholds((None, "green")))
        .targets(list(queries))
    )
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def timeseries_panel(
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str = "short",
    dashed_refs: tuple[str, ...] = (),
    stacked: bool = False,
    w: int = 12,
    h: int = 8,
) -> timeseries.Panel:
    """`dashed_refs`: queries drawn as dashed red lines: objectives and thresholds that vary per
    series, which a panel's single threshold cannot express."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .targets(list(queries))
    )
    if stacked:
        panel = panel.stacking(
            common_builders.StackingConfig().mode(common.StackingMode.NORMAL)
        ).fill_opacity(40)
    for ref in dashed_refs:
        panel = panel.override_by_query(
            ref,
            [
                dashboard.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
                dashboard.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": "red"}
                ),
                dashboard.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        )
    return panel


def status_timeline(
    title: str,
    description: str,
    query: prometheus.Dataquery,
    mappings: list[dashboard.ValueMapping],
    w: int = 24,
    h: int = 8,
) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
        .mappings(mappings)
        .show_value(common.VisibilityMode.NEVER)
        .targets([query])
    )


def table_panel(
    title: str, description: str, query: prometheus.Dataquery, w: int = 12, h: int = 8
) -> table.Panel:
    """An instant query as a table, one row per series, labels as columns."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
        .targets([query.instant().format(PromQueryFormat.TABLE)])
        .with_transformation(
            dashboard.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "value"}},
            )
        )
    )


def new_dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["drwatch", "disaster-recovery"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone(common.TimeZoneBrowser)
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dash.QueryVariable("target")
            .label("Target")
            .datasource(DATASOURCE)
            .query("label_values(drwatch_check_up, target)")
            .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
        )
        .link(
            dash.DashboardLink("drwatch dashboards")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags(["drwatch"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
