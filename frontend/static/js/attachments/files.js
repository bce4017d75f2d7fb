// A visit's photos and documents as a list: a photo's thumbnail (shown inline from this site,
// never a PDF), a DICOM file's header fields, and a download link for each.
import { el } from "../shared/dom.js";

const KINDS = { image: "Photo", pdf: "PDF document", dicom: "DICOM file" };
const DICOM_LABELS = {
  Modality: "Modality", StudyDate: "Study date", StudyDescription: "Study",
  SeriesDescription: "Series", BodyPartExamined: "Body part", InstitutionName: "Institution",
  Manufacturer: "Manufacturer", Rows: "Rows", Columns: "Columns",
};

export function sizeText(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

function when(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function fileItem(file) {
  const label = `${KINDS[file.kind] || "File"}, ${sizeText(file.size)}, added ${when(file.created_at)}`;
  const item = el("li", { class: "file-item", "data-kind": file.kind, "data-id": file.id });
  if (file.kind === "image") {
    item.append(el("img", {
      class: "file-thumb", src: `${file.content_url}?disposition=inline`,
      alt: `Photo: ${file.title}`, loading: "lazy", width: "96",
    }));
  }
  const text = el("div", { class: "file-text" },
    el("a", { href: file.content_url, download: file.title, class: "file-title" }, file.title),
    el("p", { class: "muted file-meta" }, label));
  if (file.kind === "dicom") {
    const fields = Object.entries(file.details || {});
    if (fields.length) {
      text.append(el("dl", { class: "facts dicom-fields" },
        ...fields.flatMap(([key, value]) => [el("dt", {}, DICOM_LABELS[key] || key), el("dd", {}, String(value))])));
    }
    text.append(el("p", { class: "muted" }, "DICOM images are not shown here; download to open in a viewer."));
  } else if (file.kind === "pdf" && file.details && file.details.pages) {
    text.querySelector(".file-meta").append(`, ${file.details.pages} page(s)`);
  }
  item.append(text);
  return item;
}

export function renderFiles(list, files, emptyText) {
  list.replaceChildren(...(files.length ? files.map(fileItem) : [el("li", { class: "muted" }, emptyText)]));
}
