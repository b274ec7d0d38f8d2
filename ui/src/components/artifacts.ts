// A run's artifacts: a lazily expanded folder tree and a preview of the chosen file (text,
// JSON, YAML, CSV as a table, images, MLmodel). The chosen path is in the URL (?artifact=).
// File contents are always set as text; images load from Cairn's artifact endpoint, which
// serves only image types inline.

import { CAIRN, MLFLOW, get, isAbort, messageOf, withQuery } from "../api";
import { errorBox, fill, h, link } from "../dom";
import { bytes } from "../format";
import { setQuery } from "../router";
import type { ArtifactPreview, FileInfo } from "../types";

interface MLmodelData {
  artifact_path?: string;
  run_id?: string;
  flavors?: Record<string, unknown>;
  signature?: { inputs?: string; outputs?: string; params?: string };
  model_uuid?: string;
  utc_time_created?: string;
}

export function renderArtifacts(
  body: HTMLElement,
  runId: string,
  query: URLSearchParams,
  signal: AbortSignal,
): () => void {
  const tree = h("nav", { class: "tree", "aria-label": "Artifacts" });
  const preview = h("section", { class: "preview", "aria-live": "polite" });
  let current: HTMLButtonElement | null = null;
  fill(body, h("div", { class: "artifacts" }, tree, preview));
  fill(preview, h("p", { class: "muted" }, "Choose a file to preview it."));

  const selected = query.get("artifact");
  void listFolder(null, tree).then(() => {
    if (selected) void expandTo(selected);
  });
  return () => undefined;

  async function listFolder(path: string | null, into: HTMLElement): Promise<void> {
    const list = h("ul", { role: "group" });
    into.append(list);
    try {
      const found = await get<{ files?: FileInfo[] }>(`${MLFLOW}/artifacts/list`, { run_id: runId, path: path ?? undefined }, signal);
      const files = [...(found.files ?? [])].sort((a, b) => Number(b.is_dir) - Number(a.is_dir) || a.path.localeCompare(b.path));
      if (!files.length && path === null) list.append(h("li", { class: "muted" }, "No artifacts."));
      for (const file of files) list.append(node(file));
    } catch (error) {
      if (!isAbort(error)) list.append(h("li", null, errorBox(messageOf(error))));
    }
  }

  function node(file: FileInfo): HTMLLIElement {
    const name = file.path.split("/").pop() ?? file.path;
    const li = h("li", { dataset: { path: file.path } });
    const button = h(
      "button",
      { type: "button", class: "node", "aria-expanded": file.is_dir ? "false" : undefined, title: file.path },
      file.is_dir ? `▸ ${name}/` : name,
      file.is_dir || file.file_size === undefined ? "" : h("span", { class: "muted" }, ` ${bytes(file.file_size)}`),
    );
    li.append(button);
    button.addEventListener("click", () => {
      if (file.is_dir) void toggleFolder(li, button, file.path, name);
      else choose(button, file.path);
    });
    return li;
  }

  async function toggleFolder(li: HTMLElement, button: HTMLButtonElement, path: string, name: string): Promise<void> {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    button.firstChild!.textContent = `${open ? "▸" : "▾"} ${name}/`;
    const existing = li.querySelector(":scope > ul");
    if (open) existing?.remove();
    else if (!existing) await listFolder(path, li);
  }

  async function expandTo(path: string): Promise<void> {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join("/");
      const li = tree.querySelector<HTMLLIElement>(`li[data-path="${CSS.escape(folder)}"]`);
      const button = li?.querySelector<HTMLButtonElement>(":scope > button");
      if (!li || !button) return;
      if (button.getAttribute("aria-expanded") !== "true") await toggleFolder(li, button, folder, parts[i - 1] ?? folder);
    }
    const button = tree.querySelector<HTMLButtonElement>(`li[data-path="${CSS.escape(path)}"] > button`);
    if (button) choose(button, path);
  }

  function choose(button: HTMLButtonElement, path: string): void {
    current?.classList.remove("current");
    current = button;
    button.classList.add("current");
    setQuery({ artifact: path });
    void showPreview(path);
  }

  async function showPreview(path: string): Promise<void> {
    fill(preview, h("p", { class: "muted" }, "Loading…"));
    const fileUrl = withQuery(`${CAIRN}/artifacts/get`, { run_id: runId, path });
    try {
      const found = await get<ArtifactPreview>(`${CAIRN}/artifacts/preview`, { run_id: runId, path }, signal);
      fill(
        preview,
        h(
          "div",
          { class: "preview-head" },
          h("h3", null, found.path),
          h("span", { class: "muted" }, `${found.kind.toUpperCase()} · ${bytes(found.size)} · `),
          h("a", { href: fileUrl, download: path.split("/").pop() ?? "artifact" }, "Download"),
        ),
        content(found, fileUrl),
      );
    } catch (error) {
      if (!isAbort(error)) fill(preview, errorBox(messageOf(error)));
    }
  }
}

function pre(text: string): HTMLElement {
  return h("pre", null, text);
}

function content(found: ArtifactPreview, fileUrl: string): Node[] {
  const out: Node[] = [];
  if (found.truncated) out.push(h("p", { class: "notice" }, "Showing the first 1 MiB of this file."));
  if (found.parse_error) out.push(errorBox(found.parse_error));
  switch (found.kind) {
    case "image":
      out.push(h("img", { src: fileUrl, alt: found.path, class: "artifact-image" }));
      break;
    case "json":
      out.push(pre(found.data !== undefined ? JSON.stringify(found.data, null, 2) : (found.text ?? "")));
      break;
    case "csv":
      out.push(found.rows ? csvTable(found.rows, !!found.rows_truncated) : pre(found.text ?? ""));
      break;
    case "mlmodel":
      if (found.data && typeof found.data === "object") out.push(mlmodelSummary(found.data as MLmodelData));
      out.push(h("h3", null, "MLmodel"), pre(found.text ?? ""));
      break;
    case "binary":
      out.push(h("p", { class: "muted" }, "A binary file: download it to open it."));
      break;
    case "too_large":
      out.push(h("p", { class: "muted" }, "Too large to preview: download it to open it."));
      break;
    default:
      out.push(pre(found.text ?? ""));
  }
  return out;
}

function csvTable(rows: string[][], truncated: boolean): HTMLElement {
  const [header = [], ...rest] = rows;
  return h(
    "div",
    null,
    h(
      "table",
      { class: "data csv" },
      h("thead", null, h("tr", null, header.map((cell) => h("th", null, cell)))),
      h("tbody", null, rest.map((row) => h("tr", null, row.map((cell) => h("td", null, cell))))),
    ),
    truncated ? h("p", { class: "muted" }, `First ${rows.length - 1} rows shown.`) : null,
  );
}

function schemaRows(text: string | undefined): HTMLElement | string {
  if (!text) return "—";
  try {
    const columns = JSON.parse(text) as { name?: string; type?: string }[];
    if (!Array.isArray(columns)) return text;
    return h("span", null, columns.map((c) => `${c.name ?? "?"}: ${c.type ?? "?"}`).join(", "));
  } catch {
    return text;
  }
}

function mlmodelSummary(data: MLmodelData): HTMLElement {
  const rows: [string, Node | string][] = [
    ["Flavors", Object.keys(data.flavors ?? {}).join(", ") || "—"],
    ["Artifact path", data.artifact_path ?? "—"],
    ["Source run", data.run_id ? link(`/runs/${encodeURIComponent(data.run_id)}`, data.run_id) : "—"],
    ["Created", data.utc_time_created ?? "—"],
    ["Inputs", schemaRows(data.signature?.inputs)],
    ["Outputs", schemaRows(data.signature?.outputs)],
  ];
  return h(
    "table",
    { class: "data kv mlmodel" },
    h("tbody", null, rows.map(([k, v]) => h("tr", null, h("td", null, k), h("td", null, v)))),
  );
}
