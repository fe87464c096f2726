// kefu's pages read server-sent events through fetch, not EventSource: EventSource can send no header (the web chat
// widget's token) and, after an HTTP error (429, 401, 502), gives up for good without saying which it was.
// kefuReadEvents(body, onEvent) calls onEvent({ event, data, id }) for each event of a response body until it ends.
window.kefuReadEvents = async function (body, onEvent) {
  "use strict";
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const fields = { event: "message", data: [], id: null };
      for (const line of buffer.slice(0, end).split("\n")) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;  // a comment (": …") or a line without a field
        const name = line.slice(0, colon);
        const text = line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") fields.data.push(text);
        else if (name === "event" || name === "id") fields[name] = text;
      }
      buffer = buffer.slice(end + 2);
      onEvent({ event: fields.event, data: fields.data.join("\n"), id: fields.id });
    }
  }
};
