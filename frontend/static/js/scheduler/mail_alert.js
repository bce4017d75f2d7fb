// On the admin page: how many of the clinic's emails could not be delivered, with the way there.
import { api } from "../shared/api.js";
import { el } from "../shared/dom.js";

const alert = document.getElementById("mail-alert");
api("GET", "/api/messages/undelivered").then((trouble) => {
  if (!trouble.failed) return;
  alert.replaceChildren(`${trouble.failed} email${trouble.failed === 1 ? "" : "s"} could not be delivered. `,
    el("a", { href: "/scheduler#mail-trouble" }, "See them and retry"));
  alert.hidden = false;
}).catch(() => {});
