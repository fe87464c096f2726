"""Values the bot puts into its responses (priority, waiting time, ticket status) in the customer's language."""

from __future__ import annotations

from router.crm.models import TicketStatus

_STATUS_LABELS = {
    TicketStatus.queued: ("排队等待客服处理", "waiting for an agent"),
    TicketStatus.assigned: ("已分配给客服", "assigned to an agent"),
    TicketStatus.in_progress: ("客服正在处理", "being handled by an agent"),
    TicketStatus.resolved: ("已解决", "resolved"),
    TicketStatus.closed: ("已关闭", "closed"),
    TicketStatus.merged: ("已合并到另一个工单", "merged into another ticket"),
}


def priority_label(priority: int) -> str:
    """ "P1" … "P4", the same in both languages and on the agents' screens."""
    return f"P{priority}"


def duration_label(minutes: float, language: str) -> str:
    """A waiting time as people say it: "30 minutes", "2 hours", "1 day" / "30分钟", "2小时", "1天"."""
    minutes = max(1, round(minutes))
    if minutes < 60:
        return f"{minutes}分钟" if language == "zh" else f"{minutes} minute{'s' * (minutes != 1)}"
    if minutes < 24 * 60:
        hours = round(minutes / 60)
        return f"{hours}小时" if language == "zh" else f"{hours} hour{'s' * (hours != 1)}"
    days = round(minutes / (24 * 60))
    return f"{days}天" if language == "zh" else f"{days} day{'s' * (days != 1)}"


def status_label(status: TicketStatus, language: str) -> str:
    """A ticket status as a customer understands it."""
    chinese, english = _STATUS_LABELS[status]
    return chinese if language == "zh" else english
