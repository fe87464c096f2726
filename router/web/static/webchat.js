// kefu web chat: customer messages go to the kefu web app, which relays them to the assistant; bot and agent turns
// arrive from the CRM as server-sent events. Who is chatting is the app's signed session cookie, which this page
// never sees. Everything shown is set with textContent, never innerHTML.
(function () {
  "use strict";
  const root = document.getElementById("webchat");
  const log = document.getElementById("webchat-log");
  const form = document.getElementById("webchat-form");
  const input = document.getElementById("webchat-input");
  const sendButton = document.getElementById("webchat-send");
  const statusLine = document.getElementById("webchat-status");

  let lastTurnId = 0;
  // Bot replies arrive twice: in Rasa's HTTP answer and, once logged, on the event stream. Each copy seen on one
  // path waits here (for a while) until its twin arrives on the other, so every reply is shown once whichever
  // path is faster; replies Rasa sends on its own (the CSAT question) only ever come on the stream.
  const TWIN_WAIT_MS = 20000;
  const unmatched = { rest: [], stream: [] };

  function remember(path, text) {
    unmatched[path].push({ text: text, at: Date.now() });
  }

  function claimTwin(path, text) {
    const fresh = unmatched[path].filter((entry) => Date.now() - entry.at < TWIN_WAIT_MS);
    const index = fresh.findIndex((entry) => entry.text === text);
    if (index !== -1) fresh.splice(index, 1);
    unmatched[path] = fresh;
    return index !== -1;
  }

  function setStatus(state) {
    const labels = { connecting: "连接中… Connecting…", online: "在线 Online", offline: "连接断开，正在重连… Reconnecting…" };
    statusLine.textContent = labels[state];
    statusLine.className = "webchat-status is-" + state;
    root.dataset.state = state;
  }

  function showTurn(speaker, text, buttons) {
    const item = document.createElement("li");
    item.className = "webchat-turn " + speaker;
    item.dataset.speaker = speaker;
    if (speaker === "agent") {
      const who = document.createElement("span");
      who.className = "webchat-who";
      who.textContent = "人工客服 Agent";
      item.appendChild(who);
    }
    item.appendChild(document.createTextNode(text));
    if (buttons && buttons.length) {
      const group = document.createElement("div");
      group.className = "webchat-buttons";
      for (const choice of buttons) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = choice.title;
        button.addEventListener("click", () => {
          group.querySelectorAll("button").forEach((b) => (b.disabled = true));
          send({ payload: choice.payload }, choice.title);
        });
        group.appendChild(button);
      }
      item.appendChild(group);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  async function send(body, shownText) {
    showTurn("customer", shownText);
    sendButton.disabled = true;
    try {
      const response = await fetch("/webchat/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ page: location.pathname, ...body }),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || response.statusText);
      for (const message of answer.messages) {
        if (!message.text || claimTwin("stream", message.text)) continue;
        remember("rest", message.text);
        showTurn("bot", message.text, message.buttons);
      }
    } catch (error) {
      showTurn("error", "消息未发送，请重试。Not sent, please try again. (" + error.message + ")");
      if (body.message !== undefined && !input.value) input.value = body.message; // nothing typed is lost
    } finally {
      sendButton.disabled = false;
    }
  }

  function submitTyped() {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ message: text }, text);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTyped();
  });
  input.addEventListener("keydown", (event) => {
    // Enter while a Chinese input method is composing picks a candidate; it must not send.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submitTyped();
  });

  function onStreamTurn(event) {
    const turn = JSON.parse(event.data);
    if (turn.id <= lastTurnId) return;
    lastTurnId = turn.id;
    if (turn.speaker === "bot" && claimTwin("rest", turn.text)) return;
    if (turn.speaker === "bot") remember("stream", turn.text);
    showTurn(turn.speaker, turn.text, turn.buttons);
  }

  function connect() {
    setStatus("connecting");
    const url = `/webchat/events?after=${lastTurnId}`;
    const stream = new EventSource(url);
    stream.addEventListener("open", () => setStatus("online"));
    stream.addEventListener("turn", onStreamTurn);
    // EventSource reconnects by itself (sending Last-Event-ID); the page only says so.
    stream.addEventListener("error", () => setStatus(stream.readyState === EventSource.CLOSED ? "offline" : "connecting"));
  }

  async function start() {
    setStatus("connecting");
    try {
      const response = await fetch("/webchat/history");
      if (!response.ok) throw new Error(response.statusText);
      const history = await response.json();
      history.turns.forEach((turn, index) => {
        // Only the newest turn keeps its buttons: older choices are no longer the question being asked.
        showTurn(turn.speaker, turn.text, index === history.turns.length - 1 ? turn.buttons : []);
        lastTurnId = Math.max(lastTurnId, turn.id);
      });
    } catch (error) {
      showTurn("error", "历史记录加载失败。Could not load the earlier messages.");
    }
    connect();
  }

  start();
})();
