// The visit's chat: messages go over the visit socket; the log shows each with sender and time.

export function setupChat({ socket }) {
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const error = document.getElementById("chat-error");

  function add(message) {
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = message.from;
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = ` ${new Date(message.sent_at).toLocaleTimeString(undefined, { timeStyle: "short" })}: `;
    item.append(who, when, document.createTextNode(message.text));
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  // The messages so far, as the server sends them on joining.
  function show(messages) {
    log.replaceChildren();
    messages.forEach(add);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const text = input.value.trim();
    const connection = socket();
    if (!text || !connection || !connection.connected) {
      if (text) error.textContent = "Not connected; your message was not sent.";
      return;
    }
    try {
      const ack = await connection.timeout(5000).emitWithAck("chat", { text });
      if (ack.error) {
        error.textContent = ack.error.message;
        return;
      }
      input.value = "";
    } catch (err) {
      error.textContent = "Your message was not sent; please try again.";
    }
  });

  return { add, show };
}
