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

  // The live queue reads its server-sent events through fetch (event-stream.js), so that it knows why a stream was
  // refused: 429 while this agent's other tabs hold the stream slots, 401 once the session has ended, 502 while the
  // app restarts. Every stream starts from the last cursor the page saw (rendered with
  // the rows, then an `id:` after each poll), so tickets that changed while the page was cut off arrive all the same.
  const table = document.getElementById("queue");
  if (table) {
    const body = table.tBodies[0];
    const status = document.getElementById("live-status");
    const MAX_WAIT_S = 30;
    let since = table.dataset.since;

    function showTicket(t) {
      const old = body.querySelector(`tr[data-ticket-id="${t.id}"]`);
      if (!belongs(t, table)) { if (old) old.remove(); }
      else {
        const row = buildRow(t);
        row.classList.add("new");
        if (old) old.replaceWith(row); else body.prepend(row);
      }
      document.getElementById("empty").hidden = body.rows.length > 0;
    }

    function setStatus(state, ...parts) {
      status.dataset.state = state;
      status.replaceChildren(...parts);
    }

    // Says why the queue is not live until the next try; a session that ended gets a way back in (logging in on
    // another tab also brings this one back at its next try).
    async function waitToRetry(response, failures) {
      const until = Date.now() + Math.min(MAX_WAIT_S, 2 ** failures) * 1000 * (0.5 + Math.random() / 2);
      const refused = response ? response.status : 0;
      const show = () => {
        const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
        if (refused === 401 || refused === 403) {
          const login = document.createElement("a");
          login.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
          login.textContent = "重新登录 Log in again";
          setStatus("ended", "登录已失效，实时更新已暂停 Session ended, live updates paused — ", login);
        } else {
          const why = refused === 429 ? " (实时连接过多，请关闭其他标签页 too many live connections: close other tabs)" : "";
          setStatus("paused", `实时更新已暂停 Live updates paused${why} — ${seconds} 秒后重试 retrying in ${seconds} s`);
        }
      };
      show();
      const countdown = setInterval(show, 1000);
      await pause(until - Date.now());
      clearInterval(countdown);
    }

    // Waits ``ms``, or less: back online, or the agent looking at the tab again, tries at once.
    function pause(ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          window.removeEventListener("online", done);
          document.removeEventListener("visibilitychange", onVisible);
          resolve();
        };
        const onVisible = () => { if (!document.hidden) done(); };
        const timer = setTimeout(done, ms);
        window.addEventListener("online", done);
        document.addEventListener("visibilitychange", onVisible);
      });
    }

    async function follow() {
      let failures = 0;
      for (;;) {
        let response = null;
        try {
          response = await fetch(`/console/stream?since=${encodeURIComponent(since)}`, {
            headers: { Accept: "text/event-stream, application/json" },  // a refusal comes as JSON, not a redirect
          });
          if (response.status === 410) { location.reload(); return; }  // away too long to catch up: start afresh
          if (response.ok && response.headers.get("Content-Type").startsWith("text/event-stream")) {
            setStatus("live", "实时 Live ●");
            failures = 0;
            await kefuReadEvents(response.body, (e) => {
              if (e.event === "ticket") showTicket(JSON.parse(e.data));
              if (e.id) since = e.id;  // sent after the poll's tickets
            });
            continue;  // the stream ends every 30 s: the next one goes on from its cursor
          }
        } catch (error) {
          // the network is down or the stream was cut: wait as for a refusal
        }
        await waitToRetry(response, failures++);
      }
    }
    follow();
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
