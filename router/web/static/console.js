// Console behaviour: SLA countdowns, live queue rows over server-sent events, presence heartbeat.
// Rows from the stream are built with textContent only, so customer text can never become markup.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const OPEN = new Set(["queued", "assigned", "in_progress"]);

  function countdown(cell) {
    const due = cell.dataset.due;
    if (!due) { cell.textContent = "—"; return; }
    const left = Math.round((new Date(due) - Date.now()) / 1000);
    const abs = Math.abs(left);
    const text = `${Math.floor(abs / 3600)}h ${String(Math.floor(abs % 3600 / 60)).padStart(2, "0")}m ${String(abs % 60).padStart(2, "0")}s`;
    cell.textContent = left < 0 ? `超时 breached ${text}` : text;
    cell.classList.toggle("breached", left < 0);
    cell.classList.toggle("soon", left >= 0 && left < 900);
  }
  function tickAll() { document.querySelectorAll("td.sla, span.sla").forEach(countdown); }
  tickAll();
  setInterval(tickAll, 1000);

  function cell(row, content) { const td = row.insertCell(); if (content !== undefined) td.textContent = content; return td; }
  function tag(parent, text, cls) { const span = document.createElement("span"); span.className = cls || "tag"; span.textContent = text; parent.appendChild(span); }

  function buildRow(t) {
    const row = document.createElement("tr");
    row.dataset.ticketId = t.id;
    tag(cell(row), `P${t.priority}`, `prio prio-${t.priority}`);
    const link = document.createElement("a"); link.href = `/console/tickets/${t.id}`; link.textContent = t.number; cell(row).appendChild(link);
    const subject = cell(row, t.subject); subject.appendChild(document.createElement("br"));
    tag(subject, [t.customer, t.channel, t.language].filter(Boolean).join(" · "), "muted");
    cell(row, t.category);
    const sla = cell(row); sla.className = "sla"; sla.dataset.due = t.sla_due_at || ""; countdown(sla);
    const factors = cell(row);
    (t.urgency_floors || []).forEach((f) => tag(factors, `≥P${f.priority} ${f.name}`, "tag floor-tag"));
    Object.entries(t.urgency_factors || {}).forEach(([k, v]) => tag(factors, `${k} ${typeof v === "number" ? v.toFixed(2) : v}`));
    const terms = cell(row); (t.classifier_terms || []).slice(0, 5).forEach((term) => tag(terms, term));
    cell(row, t.team || "—"); cell(row, t.assignee || "—"); cell(row, t.status);
    return row;
  }

  function belongs(t, table) {
    const tab = table.dataset.tab;
    if (tab === "resolved") return t.status === "resolved" || t.status === "closed";
    if (!OPEN.has(t.status)) return false;
    return tab !== "mine" || String(t.assignee_id) === table.dataset.agent;
  }

  const table = document.getElementById("queue");
  if (table && window.EventSource) {
    const body = table.tBodies[0];
    const status = document.getElementById("live-status");
    const source = new EventSource("/console/stream");
    source.onopen = () => { status.textContent = "实时 Live ●"; };
    source.onerror = () => { status.textContent = "重连中 Reconnecting…"; };
    source.addEventListener("ticket", (message) => {
      const t = JSON.parse(message.data);
      const old = body.querySelector(`tr[data-ticket-id="${t.id}"]`);
      if (!belongs(t, table)) { if (old) old.remove(); }
      else {
        const row = buildRow(t);
        row.classList.add("new");
        if (old) old.replaceWith(row); else body.prepend(row);
      }
      document.getElementById("empty").hidden = body.rows.length > 0;
    });
  }

  // Heartbeat while the console is open, so the worker keeps this agent's tickets with them.
  const presence = document.getElementById("presence");
  if (presence) {
    const beat = () => fetch("/console/heartbeat", { method: "POST", headers: { "X-CSRF-Token": csrf } })
      .then((response) => response.ok ? response.json() : null)
      .then((body) => { if (body) presence.value = body.presence; })  // the worker may have set us offline
      .catch(() => {});
    beat();
    setInterval(beat, 30000);
  }

  // Canned responses fill the reply box.
  document.querySelectorAll("[data-canned]").forEach((button) => button.addEventListener("click", () => {
    const box = document.getElementById("reply-text");
    box.value = button.dataset.canned;
    box.focus();
  }));
})();
