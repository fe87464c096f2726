// kefu web chat widget: <script src="https://KEFU/static/webchat-widget.js" async></script> on any page adds a
// chat button that opens the kefu chat page in a frame. The frame's session is a signed token, not a cookie (which
// would be a third-party one here); where the browser denies the frame its own storage as well, this script keeps
// the token in this site's local storage for it, so a returning customer finds their conversation.
(function () {
  "use strict";
  const script = document.currentScript;
  const origin = new URL(script.src).origin;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "kefu-webchat-launcher";
  button.textContent = "💬 客服 Chat";
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:20px;bottom:20px;z-index:2147483000;padding:12px 18px;border:0;" +
    "border-radius:24px;background:#1f6feb;color:#fff;font:15px system-ui,sans-serif;cursor:pointer;";
  const frame = document.createElement("iframe");
  frame.id = "kefu-webchat-frame";
  frame.title = "kefu 客服";
  frame.style.cssText = "position:fixed;right:20px;bottom:76px;z-index:2147483000;width:380px;height:560px;" +
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 100px);border:1px solid #d0d7de;border-radius:12px;" +
    "box-shadow:0 8px 24px rgba(0,0,0,.2);display:none;background:#fff;";
  button.addEventListener("click", () => {
    if (!frame.src) frame.src = origin + "/chat?embed=1";
    const open = frame.style.display === "none";
    frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
  });
  const TOKEN_KEY = "kefu-webchat-token";
  function storage() {
    try {
      return window.localStorage;
    } catch (error) {
      return null;
    }
  }
  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow || event.origin !== origin || !event.data) return;
    const store = storage();
    if (event.data.type === "kefu-webchat:token-request") {
      frame.contentWindow.postMessage({ type: "kefu-webchat:token", token: store && store.getItem(TOKEN_KEY) }, origin);
    } else if (event.data.type === "kefu-webchat:token-store" && typeof event.data.token === "string" && store) {
      store.setItem(TOKEN_KEY, event.data.token);
    }
  });
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
