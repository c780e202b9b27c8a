"""Plotly figures and table rows built from query results (pure functions: rows in, figure out)."""

from __future__ import annotations

import html
from typing import Any, Final

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from pricing.explain import Factor
from training.live_gate import LiveComparison
from training.shadow import ActiveShadow

GREEN, RED, GREY, BLUE, ORANGE = "#1a7f37", "#b42318", "#6b7785", "#1f5fbf", "#c2620a"
DEAL_COLORS: Final = {"great": GREEN, "good": "#4c9a2a", "fair": GREY, "high": ORANGE, "overpriced": RED,
                      "not enough information": "#8a8f98"}  # fmt: skip


def light_template() -> go.layout.Template:
    """plotly_white's look for what the pages draw (bars, lines, heatmaps on 2-D axes): the whole template, with
    every trace type, 3-D scenes and maps, took ~10 ms to copy into each figure, this one ~3 (a page draws 1-3)."""
    white = pio.templates["plotly_white"]
    unused = ("geo", "polar", "ternary", "scene", "mapbox")
    layout = {k: v for k, v in white.layout.to_plotly_json().items() if k not in unused}
    traces = {"bar": white.data.bar, "scatter": white.data.scatter, "heatmap": white.data.heatmap}
    return go.layout.Template(layout=layout, data=traces)


LAYOUT: Final = {"margin": {"l": 50, "r": 10, "t": 30, "b": 30}, "template": light_template(),
                 "legend": {"orientation": "h", "y": -0.15}}  # fmt: skip


HEATMAP_HOVER: Final = "%{y}<br>window ending %{x}<br>score %{z:.3f} (%{text})<extra></extra>"


def money(value: Any) -> str:
    return "—" if value is None else f"${float(value):,.0f}"


def stamp(value: Any) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z")


def empty(figure: go.Figure, text: str) -> go.Figure:
    figure.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def car(row: dict[str, Any]) -> str:
    """Year, make and model as far as the listing gives them."""
    return " ".join(str(row[k]) for k in ("year", "manufacturer", "make", "model") if row.get(k)) or "(not given)"


def prediction_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "scored_at": stamp(r["scored_at"]),
            "source": r.get("source") or "—",
            "car": car(r),
            "odometer": "—" if r["odometer"] is None else f"{float(r['odometer']):,.0f}",
            "state": (r["state"] or "—").upper(),
            "asking_price": money(r["asking_price"]),
            "predicted_price": money(r["predicted_price"]),
            "range": f"{money(r['price_low'])} – {money(r['price_high'])}" if r["price_low"] is not None else "—",
            "deal_rating": r["deal_rating"] or "—",
            "model_version": f"v{r['model_version']}",
        }
        for r in rows
    ]


def throughput_figure(buckets: list[dict[str, Any]], minutes: int) -> go.Figure:
    """Listings per second and produced → stored latency (p50, p95) per 10-second bucket."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Listings per second", "Latency, produced → stored (ms)"))
    if not buckets:
        figure.update_layout(height=260, **LAYOUT)
        return empty(figure, f"Nothing scored in the last {minutes} minutes.")
    x = [b["bucket"] for b in buckets]
    figure.add_bar(x=x, y=[float(b["per_second"]) for b in buckets], name="listings/s", marker_color=BLUE,
                   row=1, col=1)  # fmt: skip
    for key, name, color in (("p50_ms", "p50", GREEN), ("p95_ms", "p95", ORANGE)):
        figure.add_scatter(x=x, y=[float(b[key]) for b in buckets], name=f"latency {name}", mode="lines+markers",
                           line={"color": color}, row=1, col=2)  # fmt: skip
    figure.update_layout(height=260, **LAYOUT)
    return figure


def drift_heatmap(features: list[dict[str, Any]]) -> go.Figure:
    """Per-feature drift score (rows) over windows (columns); drifted cells are outlined in the hover."""
    figure = go.Figure()
    if not features:
        figure.update_layout(height=380, **LAYOUT)
        return empty(figure, "No drift windows yet: the drift worker closes one every 2,000 predictions or "
                     "5 minutes (PRICEMYRIDE_DRIFT_WINDOW_*).")  # fmt: skip
    windows = sorted({(f["window_id"], f["window_end"]) for f in features})
    names = sorted({f["feature"] for f in features})
    column = {w[0]: i for i, w in enumerate(windows)}
    row = {n: i for i, n in enumerate(names)}
    z: list[list[float | None]] = [[None] * len(windows) for _ in names]
    text: list[list[str]] = [[""] * len(windows) for _ in names]
    for f in features:
        z[row[f["feature"]]][column[f["window_id"]]] = float(f["score"])
        text[row[f["feature"]]][column[f["window_id"]]] = "drifted" if f["drifted"] else "stable"
    figure.add_heatmap(x=[stamp(w[1]) for w in windows], y=names, z=z, text=text, colorscale="OrRd",
                       colorbar={"title": "score"}, hovertemplate=HEATMAP_HOVER)  # fmt: skip
    figure.update_layout(height=40 + 22 * len(names), **LAYOUT)
    figure.update_xaxes(type="category", showticklabels=len(windows) <= 12)
    return figure


def event_marks(requests: list[dict[str, Any]], events: list[dict[str, Any]], rows: int) -> list[dict[str, Any]]:
    """Vertical lines on each of ``rows`` stacked subplots: retrain requests (dotted orange), promotions
    (dashed green). Built as plain shape dicts in one go: plotly's add_vline is slow per call."""
    marks = [(r["requested_at"], "dot", ORANGE) for r in requests]
    marks += [(e["at"], "dash", GREEN) for e in events if e["kind"] == "promoted"]
    return vertical_lines(marks, rows)


def vertical_lines(marks: list[tuple[Any, str, str]], rows: int) -> list[dict[str, Any]]:
    """A line across each of ``rows`` stacked subplots at every (x, dash, colour) mark."""
    return [
        {"type": "line", "x0": at, "x1": at, "y0": 0, "y1": 1, "xref": "x" if row == 1 else f"x{row}",
         "yref": "y domain" if row == 1 else f"y{row} domain", "line": {"dash": dash, "color": color, "width": 1.5}}
        for row in range(1, rows + 1)
        for at, dash, color in marks
    ]  # fmt: skip


def drift_timeline(
    windows: list[dict[str, Any]], requests: list[dict[str, Any]], events: list[dict[str, Any]], threshold: float
) -> go.Figure:
    """Share of drifted features with the policy's threshold; realized MAE and range coverage per window;
    retrain requests (dotted orange) and promotions (dashed green) on the time axis."""
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("Share of drifted features", "Realized MAE ($)",
                                           "80% range coverage"))  # fmt: skip
    if not windows:
        figure.update_layout(height=560, **LAYOUT)
        return empty(figure, "No drift windows yet.")
    x = [w["window_end"] for w in windows]
    figure.add_scatter(x=x, y=[w["drift_share"] for w in windows], mode="lines+markers", name="drift share",
                       line={"color": BLUE}, row=1, col=1)  # fmt: skip
    figure.add_hline(y=threshold, line_dash="dash", line_color=RED, row=1, col=1,
                     annotation_text=f"policy threshold {threshold:.0%}")  # fmt: skip
    for version in sorted({w["model_version"] for w in windows}):
        mine = [w for w in windows if w["model_version"] == version]
        figure.add_scatter(x=[w["window_end"] for w in mine], y=[w["mae"] for w in mine], mode="lines+markers",
                           name=f"MAE v{version}", row=2, col=1)  # fmt: skip
        figure.add_scatter(x=[w["window_end"] for w in mine], y=[w["coverage"] for w in mine],
                           mode="lines+markers", name=f"coverage v{version}", row=3, col=1)  # fmt: skip
    fired = [w for w in windows if w["fired"]]
    figure.add_scatter(x=[w["window_end"] for w in fired], y=[w["drift_share"] for w in fired], mode="markers",
                       marker={"symbol": "x", "size": 11, "color": RED}, name="window fired", row=1, col=1)  # fmt: skip
    figure.add_hline(y=0.8, line_dash="dot", line_color=GREY, row=3, col=1, annotation_text="nominal 80%")
    figure.update_layout(shapes=[*figure.layout.shapes, *event_marks(requests, events, rows=3)])
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", row=3, col=1)
    figure.update_layout(height=560, **LAYOUT)
    return figure


# A shadow's end, where no decision row says it already (promoted, rejected and rolled back have their own rows).
SHADOW_ENDS: Final = {"kept": "watch: new one holds", "dropped": "shadow dropped", "replaced": "shadow replaced"}


def event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Models page's decisions, newest first, each named by what it decided and at which gate; a shadow's end
    is left out where the decision row that follows it says the same."""
    named = ((e, decision(e)) for e in events)
    return [{"at": stamp(e["at"]), "kind": kind, "version": e["version"], "champion": e["champion"],
             "reason": e["reason"]} for e, kind in named if kind is not None]  # fmt: skip


def decision(event: dict[str, Any]) -> str | None:
    """``model_events`` kind, the shadow's role and outcome, and whether the live gate decided → its name."""
    kind, role, outcome, live = (event.get(k) for k in ("kind", "role", "outcome", "live"))
    if kind == "shadow_ended":
        decided = outcome in ("promoted", "rejected", "rolled_back")
        return None if decided else SHADOW_ENDS.get(str(outcome), f"shadow {outcome}")
    if kind == "shadowed":
        return "old champion watches" if role == "watch" else "passed offline → shadow"
    if kind == "promoted":
        return "promoted back" if role == "watch" else "promoted live" if live else "promoted"
    if kind == "rejected":
        return "rejected live" if live else "rejected"
    return "rolled back" if kind == "rolled_back" else str(kind)


def version_rows(versions: list[Any], counts: dict[int, int]) -> list[dict[str, Any]]:
    return [
        {
            "version": f"v{v.version}",
            "aliases": ", ".join(f"@{a}" for a in v.aliases) or "—",
            "created": stamp(v.created),
            "mae": money(v.figures.get("mae")),
            "rmse": money(v.figures.get("rmse")),
            "r2": f"{v.figures['r2']:.3f}" if "r2" in v.figures else "—",
            "coverage": f"{v.figures['coverage']:.1%}" if "coverage" in v.figures else "—",
            "gate": v.gate or "—",
            "gate_reason": v.gate_reason or "—",
            "scored": f"{counts.get(v.version, 0):,}",
            "data": v.source or "—",
        }
        for v in versions
    ]


def slice_rows(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A version's per-slice figures (``training.slices``) as the Models page's table rows."""
    rows = []
    for entry in slices:
        m = entry.get("model", {})
        rows.append({
            "group": entry.get("group", ""), "slice": entry.get("slice", ""), "rows": f"{entry.get('rows', 0):,}",
            "mae": money(m.get("mae")), "rmse": money(m.get("rmse")),
            "bias": f"{m['median_signed_pct']:+.1%}" if "median_signed_pct" in m else "—",
            "coverage": f"{m['coverage']:.1%}" if "coverage" in m else "—",
            "width": money(m.get("mean_width")),
            "unsure": f"{m['rated not enough information']:.0%}" if "rated not enough information" in m else "—",
        })  # fmt: skip
    return rows


def version_counts_figure(counts: dict[int, int]) -> go.Figure:
    figure = go.Figure()
    if not counts:
        figure.update_layout(height=220, **LAYOUT)
        return empty(figure, "No listings scored yet.")
    figure.add_bar(x=[f"v{v}" for v in counts], y=list(counts.values()), marker_color=BLUE,
                   text=[f"{n:,}" for n in counts.values()], textposition="auto")  # fmt: skip
    figure.update_layout(height=220, yaxis_title="listings scored", **LAYOUT)
    return figure


def factors_figure(factors: list[Factor]) -> go.Figure:
    """How much each top factor moves this car's price from the typical one (multiplicative, in %)."""
    ordered = list(reversed(factors))
    figure = go.Figure()
    figure.add_bar(x=[f.percent for f in ordered], y=[html.escape(f.label) for f in ordered], orientation="h",
                   marker_color=[GREEN if f.log_effect > 0 else RED for f in ordered],
                   text=[f"{f.percent:+.0f}%" for f in ordered], textposition="auto")  # fmt: skip
    figure.update_layout(height=60 + 34 * len(factors), xaxis_title="effect on the price (%)", **LAYOUT)
    return figure


def dead_letter_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def preview(raw: bytes | None, size: int | None) -> str:
        if raw is None:
            return "(empty message)"
        text = bytes(raw).decode("utf-8", errors="replace")
        return text if (size or 0) <= len(raw) else f"{text}… ({size:,} bytes)"

    return [
        {
            "failed_at": stamp(r["failed_at"]),
            "where": f"{r['topic']}[{r['partition']}]@{r['offset']}",
            "key": "—" if r["key"] is None else bytes(r["key"]).decode("utf-8", errors="replace"),
            "reason": r["reason"],
            "payload": preview(r["payload"], r["size"]),
        }
        for r in rows
    ]


def reasons_figure(reasons: list[dict[str, Any]]) -> go.Figure:
    figure = go.Figure()
    if not reasons:
        figure.update_layout(height=220, **LAYOUT)
        return empty(figure, "No dead letters: every listing so far was valid.")
    ordered = list(reversed(reasons))
    # A field name comes from a sender's JSON key: escaped, or Plotly would draw its <a href=…> as a link.
    labels = [html.escape(str(r["field"])) for r in ordered]
    figure.add_bar(x=[r["events"] for r in ordered], y=labels, orientation="h",
                   marker_color=RED, text=[f"{r['events']:,}" for r in ordered], textposition="auto")  # fmt: skip
    figure.update_layout(height=60 + 28 * len(reasons), xaxis_title="dead letters", **LAYOUT)
    return figure


def shadow_summary(shadow: ActiveShadow | None, comparison: LiveComparison | None, needed: int) -> str:
    """One paragraph on the running shadow: who, since when, how far, and the figures so far."""
    if shadow is None:
        return "No version scores in shadow now. Past decisions, with their figures, are in the table below."
    head = (f"Version {shadow.version} scores in shadow as the {shadow.role.value} beside version {shadow.champion} "
            f"since {stamp(shadow.since)}")  # fmt: skip
    if comparison is None:
        return f"{head}: no labelled live listings yet (the gate decides at {needed:,})."
    c = comparison
    return (f"{head}: {c.rows:,} labelled live listings of the {needed:,} the gate decides at. MAE: shadow "
            f"{money(c.shadow_mae)}, champion {money(c.champion_mae)}; shadow − champion in "
            f"[{c.ci_low:+,.0f}, {c.ci_high:+,.0f}] $ (bootstrap interval). 80% coverage: shadow "
            f"{c.shadow_coverage:.1%}, champion {c.champion_coverage:.1%}. Median APE: shadow {c.shadow_mdape:.1%}, "
            f"champion {c.champion_mdape:.1%}.")  # fmt: skip


def shadow_group_rows(comparison: LiveComparison | None) -> list[dict[str, Any]]:
    """Per source and per band of the champion's price: rows and both models' MAE and coverage."""
    if comparison is None:
        return []
    rows = []
    for group, parts in (("source", comparison.by_source), ("band of champion's price", comparison.by_band)):
        for name, f in sorted(parts.items()):
            rows.append({"group": group, "name": name, "rows": f"{f['rows']:,.0f}",
                         "champion_mae": money(f["champion_mae"]), "shadow_mae": money(f["challenger_mae"]),
                         "champion_coverage": f"{f['champion_coverage']:.1%}",
                         "shadow_coverage": f"{f['challenger_coverage']:.1%}"})  # fmt: skip
    return rows
