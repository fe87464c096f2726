"""Charts of every analysis as PNG bytes (matplotlib, Agg backend: no display, safe in a web worker)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend must be chosen before pyplot loads
from matplotlib import font_manager
from matplotlib.figure import Figure

from router.analytics.csat_drivers import DriverReport
from router.analytics.kpis import KpiReport
from router.analytics.rules import Rule
from router.analytics.segments import SegmentReport
from router.analytics.staffing import TeamPlan
from router.analytics.topics import TopicReport

# Matplotlib 3.5 has no per-glyph fallback: a font with both Latin and CJK glyphs must be the first choice, or
# Chinese topic words render as boxes. The Debian package fonts-wqy-microhei (or Noto CJK) provides one.
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC")
# Matplotlib's font cache predates fonts installed later, so CJK font files are registered by path.
for _path in font_manager.findSystemFonts():
    if any(marker in _path.lower() for marker in ("wqy", "notosanscjk", "notosanssc", "sourcehansans")):
        font_manager.fontManager.addfont(_path)
_installed = {font.name for font in font_manager.fontManager.ttflist}
plt.rcParams["font.family"] = [name for name in CJK_FONTS if name in _installed] + ["DejaVu Sans"]
plt.rcParams["axes.unicode_minus"] = False


def has_cjk_font() -> bool:
    """Whether Chinese text in charts will render (doctor and the page warn when it will not)."""
    return any(name in _installed for name in CJK_FONTS)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _empty(title: str) -> bytes:
    figure, axes = plt.subplots(figsize=(6, 2))
    axes.text(0.5, 0.5, "no data in this period", ha="center", va="center")
    axes.set_title(title)
    axes.axis("off")
    return _png(figure)


def kpi_chart(report: KpiReport, group_by: str) -> bytes:
    """Tickets and SLA breach rate per team/channel, next to the CSAT distribution."""
    if not report.by_group:
        return _empty("KPIs")
    figure, (volume, csat) = plt.subplots(1, 2, figsize=(11, 4))
    names = [str(row[group_by]) for row in report.by_group]
    volume.bar(names, [row["conversations"] for row in report.by_group], label="conversations", color="#9ecae1")
    volume.bar(names, [row["tickets"] for row in report.by_group], label="tickets", color="#3182bd")
    breach = volume.twinx()
    breach.plot(names, [row["sla_breach_rate"] or 0 for row in report.by_group], "o-", color="#e6550d")
    breach.set_ylabel("SLA breach rate")
    breach.set_ylim(0, 1)
    volume.set_title(f"Volume by {group_by}, {report.period.label}")
    volume.legend(loc="upper left")
    volume.tick_params(axis="x", rotation=30)
    scores = report.csat_distribution
    scores = report.csat_distribution
    csat.bar([str(row["score"]) for row in scores], [row["count"] for row in scores], color="#31a354")
    csat.set_title("CSAT ratings")
    csat.set_xlabel("score")
    return _png(figure)


def topics_chart(report: TopicReport) -> bytes:
    """Each LDA topic's share of complaints now and in the previous period."""
    if not report.topics:
        return _empty("Complaint topics")
    figure, axes = plt.subplots(figsize=(10, 0.5 * len(report.topics) + 1.5))
    labels = [topic.label for topic in report.topics][::-1]
    positions = range(len(labels))
    axes.barh([p + 0.2 for p in positions], [t.share for t in report.topics][::-1], 0.4, label="this period")
    axes.barh(
        [p - 0.2 for p in positions],
        [t.previous_share for t in report.topics][::-1],
        0.4,
        label="previous period",
        color="#bdbdbd",
    )
    axes.set_yticks(list(positions), labels)
    axes.set_xlabel("share of complaints")
    axes.set_title(f"Complaint topics (LDA), {report.period.label}")
    axes.legend()
    return _png(figure)


def drivers_chart(report: DriverReport | None) -> bytes:
    """Each factor's CSAT effect with its confidence interval; intervals off zero are real effects."""
    if report is None:
        return _empty("CSAT drivers")
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(report.drivers) + 1.5))
    drivers = report.drivers[::-1]
    errors = [[d.coefficient - d.ci_low for d in drivers], [d.ci_high - d.coefficient for d in drivers]]
    colors = ["#de2d26" if d.ci_high < 0 else "#31a354" if d.ci_low > 0 else "#969696" for d in drivers]
    axes.barh([d.description for d in drivers], [d.coefficient for d in drivers], xerr=errors, color=colors)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel(f"CSAT points per unit ({report.confidence:.0%} CI)")
    axes.set_title(f"CSAT drivers, n={report.observations}, R²={report.r_squared:.2f}")
    return _png(figure)


def segments_chart(report: SegmentReport | None) -> bytes:
    """Customers by contacts and complaint rate, coloured by segment, anomalies crossed."""
    if report is None:
        return _empty("Customer segments")
    figure, axes = plt.subplots(figsize=(8, 5))
    customers = report.customers
    for profile in report.segments:
        members = customers[customers["segment"] == profile.number]
        axes.scatter(
            members["conversations"],
            members["complaint_rate"],
            s=14,
            alpha=0.6,
            label=f"segment {profile.number} ({profile.customers})",
        )
    odd = customers[customers["anomaly"]]
    axes.scatter(odd["conversations"], odd["complaint_rate"], marker="x", color="black", s=40, label="anomaly")
    axes.set_xscale("log")
    axes.set_xlabel("conversations (log)")
    axes.set_ylabel("complaint rate")
    axes.set_title(f"Customer segments, k={report.k} by silhouette")
    axes.legend(fontsize=8)
    return _png(figure)


def rules_chart(rules: list[Rule]) -> bytes:
    """The strongest association rules by lift, with their confidence in the label."""
    if not rules:
        return _empty("Association rules")
    top = rules[:12][::-1]
    figure, axes = plt.subplots(figsize=(11, 0.45 * len(top) + 1.5))
    axes.barh([f"{rule.text}  ({rule.confidence:.0%})" for rule in top], [rule.lift for rule in top], color="#756bb1")
    axes.axvline(1, color="black", linewidth=0.8)
    axes.set_xlabel("lift")
    axes.set_title("Association rules (Apriori): antecedent → outcome (confidence)")
    return _png(figure)


def staffing_chart(plans: list[TeamPlan]) -> bytes:
    """Per team: agents required each hour and agents the optimal shifts put on duty."""
    if not plans:
        return _empty("Staffing")
    figure, axes_list = plt.subplots(len(plans), 1, figsize=(9, 1.8 * len(plans) + 0.5), sharex=True, squeeze=False)
    for axes, plan in zip(axes_list[:, 0], plans, strict=True):
        axes.bar(range(24), plan.on_duty, color="#9ecae1", label="on duty")
        axes.step(range(24), plan.required, where="mid", color="#e6550d", label="required")
        axes.set_ylabel(plan.team, rotation=0, ha="right")
    axes_list[0, 0].legend(fontsize=8)
    axes_list[0, 0].set_title("Agents per hour: optimal shifts (linprog) vs requirement")
    axes_list[-1, 0].set_xlabel("hour of day (UTC)")
    return _png(figure)
