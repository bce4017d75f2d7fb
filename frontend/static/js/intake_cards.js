// The visit page's intake block for the provider: the patient's red-flag cards and answers.
// Kept apart from the visit itself (visit/app.js): it only reads and shows.
import { api } from "./shared/api.js";
import { el } from "./shared/dom.js";
import { cardList } from "./shared/cards.js";

const root = document.getElementById("intake-cards");
const status = document.getElementById("intake-status");

function answerText(answer) {
  if (Array.isArray(answer)) return answer.join(", ");
  if (answer === true) return "Yes";
  if (answer === false) return "No";
  return String(answer);
}

(async () => {
  try {
    const intake = await api("GET", `/api/appointments/${root.dataset.appointmentId}/intake`);
    status.textContent = intake.submitted_at ? "" : "The patient has not sent their intake answers.";
    if (intake.cards.length) root.append(cardList(intake.cards, "Red-flag cards"));
    else if (intake.submitted_at) root.append(el("p", { class: "muted" }, "No red flags in the patient's answers."));
    if (intake.answers.length) {
      root.append(el("details", {},
        el("summary", {}, "The patient's answers"),
        el("dl", { class: "facts intake-answers" },
          ...intake.answers.flatMap((a) => [el("dt", {}, a.text), el("dd", {}, answerText(a.answer))]))));
    }
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
})();
