// Red-flag cards from a patient's intake answers, in CDS Hooks shape (summary, indicator
// info/warning/critical, detail, source.label), as the server sorted them: critical first.
import { el } from "./dom.js";

const LABELS = { critical: "Critical", warning: "Warning", info: "Info" };

export function cardList(cards, label) {
  return el("ul", { class: "plain flag-cards", "aria-label": label },
    ...cards.map((card) => el("li", { class: `flag-card flag-${card.indicator}`, "data-indicator": card.indicator },
      el("strong", {}, `${LABELS[card.indicator] || card.indicator}: ${card.summary}`),
      el("div", { class: "flag-detail" }, card.detail),
      el("div", { class: "muted flag-source" }, `Source: ${card.source.label}`))));
}
