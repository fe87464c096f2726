// kefu web chat widget: <script src="https://KEFU/static/webchat-widget.js" async></script> on any page adds a
// chat button that opens the kefu chat page in a frame (its session is the kefu origin's signed cookie).
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
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
