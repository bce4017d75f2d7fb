// Dates and times as the viewer reads them: in the browser's zone and language.

export function formatLocal(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
