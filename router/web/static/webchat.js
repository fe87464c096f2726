// kefu web chat: customer messages go to the kefu web app, which relays them to the assistant; bot and agent turns
// arrive from the CRM as server-sent events. Who is chatting is the app's signed session cookie, which this page
// never sees, or, inside the script-tag widget's frame on a shop's site, where that cookie would be a third-party
// one that many browsers refuse, a signed session token sent in a header. Everything shown is set with textContent,
// never innerHTML.
(function () {
  "use strict";
  const root = document.getElementById("webchat");
  const log = document.getElementById("webchat-log");
  const form = document.getElementById("webchat-form");
  const input = document.getElementById("webchat-input");
  const sendButton = document.getElementById("webchat-send");
  const statusLine = document.getElementById("webchat-status");
  const embedded = root.dataset.embedded === "true";
  const TOKEN_HEADER = "X-Kefu-Chat-Token";
  const TOKEN_KEY = "kefu-webchat-token";
  const RECONNECT_MS = 1500;
  let token = null;

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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function setStatus(state, retryInSeconds, detail) {
    const labels = {
      connecting: "连接中… Connecting…",
      online: "在线 Online",
      offline: "连接断开，正在重连… Reconnecting…",
      busy: `${detail} — ${retryInSeconds} 秒后重试 · retrying in ${retryInSeconds} s`,
      refused: "无法识别会话，请允许本站 Cookie 后刷新页面 · No chat session: allow cookies for this site and reload",
    };
    statusLine.textContent = labels[state];
    statusLine.className = "webchat-status is-" + state;
    root.dataset.state = state;
  }

  // The widget's frame keeps its token in its own local storage. Browsers that block third-party cookies may deny a
  // frame that storage too (Chrome does): then the widget's script on the shop's page keeps it in the shop's storage,
  // handing it over by message. The frame's own token never goes to its parent: with unpartitioned storage every
  // site embedding the frame would share it.
  function frameStorage() {
    try {
      window.localStorage.getItem(TOKEN_KEY);
      return window.localStorage;
    } catch (error) {
      return null;
    }
  }

  function askHost() {
    if (window.parent === window) return Promise.resolve(null);
    return new Promise((resolve) => {
      const giveUp = setTimeout(() => finish(null), 3000);
      function finish(value) {
        clearTimeout(giveUp);
        window.removeEventListener("message", onAnswer);
        resolve(value);
      }
      function onAnswer(event) {
        if (event.source !== window.parent || !event.data || event.data.type !== "kefu-webchat:token") return;
        finish(typeof event.data.token === "string" ? event.data.token : null);
      }
      window.addEventListener("message", onAnswer);
      window.parent.postMessage({ type: "kefu-webchat:token-request" }, "*");
    });
  }

  async function storedToken(storage) {
    return storage ? storage.getItem(TOKEN_KEY) : askHost();
  }

  function keepToken(storage, value) {
    if (storage) storage.setItem(TOKEN_KEY, value);
    else if (window.parent !== window) window.parent.postMessage({ type: "kefu-webchat:token-store", token: value }, "*");
  }

  // A fresh token for the stored one's session (so it lives on), or for a new session when none is stored or the
  // stored one has expired, as a cookie would have.
  async function openSession() {
    const storage = frameStorage();
    const stored = await storedToken(storage);
    let answer = await fetch("/webchat/sessions", { method: "POST", headers: stored ? { [TOKEN_HEADER]: stored } : {} });
    if (answer.status === 401 && stored) answer = await fetch("/webchat/sessions", { method: "POST" });
    if (!answer.ok) throw new Error(answer.statusText);
    token = (await answer.json()).token;
    keepToken(storage, token);
  }

  function chatFetch(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    if (token) headers[TOKEN_HEADER] = token;
    return fetch(path, { ...options, headers: headers });
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
      const response = await chatFetch("/webchat/messages", {
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

  function onStreamTurn(data) {
    const turn = JSON.parse(data);
    if (turn.id <= lastTurnId) return;
    lastTurnId = turn.id;
    if (turn.speaker === "bot" && claimTwin("rest", turn.text)) return;
    if (turn.speaker === "bot") remember("stream", turn.text);
    showTurn(turn.speaker, turn.text, turn.buttons);
  }

  function retryAfterSeconds(response) {
    const header = response.headers.get("Retry-After") || "";
    const seconds = /^\d+$/.test(header) ? Number(header) : Math.ceil((Date.parse(header) - Date.now()) / 1000);
    return Number.isFinite(seconds) && seconds > 0 ? seconds : 5;
  }

  // The server's refusal says which limit it was (in Chinese and English); the page adds when it tries again.
  async function waitOutRateLimit(response) {
    const seconds = retryAfterSeconds(response);
    const refusal = await response.json().catch(() => ({}));
    const reason = refusal.error || "请求过多 · too many requests";
    const until = Date.now() + seconds * 1000;
    const showCountdown = () => setStatus("busy", Math.max(1, Math.ceil((until - Date.now()) / 1000)), reason);
    showCountdown();
    const countdown = setInterval(showCountdown, 1000);
    await sleep(seconds * 1000);
    clearInterval(countdown);
  }

  // The stream ends every couple of minutes (and on network trouble); it is opened again from the last turn shown.
  async function follow() {
    for (;;) {
      let response;
      try {
        response = await chatFetch(`/webchat/events?after=${lastTurnId}`, {
          headers: { Accept: "text/event-stream, application/json" }, // a refusal comes as JSON
        });
      } catch (error) {
        setStatus("offline");
        await sleep(RECONNECT_MS);
        continue;
      }
      if (response.status === 429) {
        await waitOutRateLimit(response);
        setStatus("connecting");
        continue;
      }
      if (response.status === 401 && embedded) {
        await openSession().catch(() => sleep(RECONNECT_MS));
        continue;
      }
      if (response.status === 401) {
        setStatus("refused");
        return;
      }
      if (!response.ok) {
        setStatus("offline");
        await sleep(RECONNECT_MS);
        continue;
      }
      setStatus("online");
      try {
        await kefuReadEvents(response.body, (e) => { if (e.event === "turn" && e.data) onStreamTurn(e.data); });
        setStatus("connecting");
      } catch (error) {
        setStatus("offline");
        await sleep(RECONNECT_MS);
      }
    }
  }

  async function start() {
    setStatus("connecting");
    try {
      if (embedded) await openSession();
      const response = await chatFetch("/webchat/history");
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
    follow();
  }

  start();
})();
