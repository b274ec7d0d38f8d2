// Lineage of a model version (?model=NAME&version=N or &alias=A) or a run (?run_id=ID):
// model version → run → code, params, environment → the table versions the run read and wrote
// → the commits that produced them.

import { CAIRN, get, isAbort, messageOf } from "../api";
import { errorBox, fill, h, link, type Child } from "../dom";
import { count, dateTime } from "../format";
import type { RouteContext } from "../router";
import type { Lineage, LineageTable } from "../types";
import { dataHref } from "./data";

/** The Lineage page URL of a model version. */
export function lineageHref(model: string, version: string): string {
  return `/lineage?${new URLSearchParams({ model, version }).toString()}`;
}

function node(kind: string, title: Child, ...rows: Child[]): HTMLElement {
  return h("div", { class: `lineage-node lineage-${kind}`, dataset: { kind } }, h("div", { class: "lineage-kind" }, kind), h("div", { class: "lineage-title" }, title), ...rows);
}

function facts(entries: [string, string | null | undefined][], empty: string): HTMLElement {
  const shown = entries.filter(([, v]) => v !== null && v !== undefined && v !== "");
  if (!shown.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    { class: "data kv facts" },
    h("tbody", null, shown.map(([k, v]) => h("tr", null, h("td", null, k), h("td", null, v ?? "")))),
  );
}

function column(...nodes: Child[]): HTMLElement {
  return h("div", { class: "lineage-column" }, ...nodes);
}

const arrow = (): HTMLElement => h("div", { class: "lineage-arrow", "aria-hidden": "true" }, "→");

function tableNode(table: LineageTable): HTMLElement {
  const content =
    table.content_matches === true
      ? h("span", { class: "badge status-finished" }, "content unchanged")
      : table.content_matches === false
        ? h("span", { class: "badge status-failed" }, "content differs from the recorded digest")
        : null;
  return node(
    "table",
    [link(dataHref(table.uri, { v: table.version }), `${table.name} v${table.version}`), " ", h("span", { class: `badge role-${table.role}` }, table.role === "output" ? "written" : "read")],
    h("div", { class: "mono muted small" }, table.uri),
    h("div", null, table.num_rows === null ? "" : `${count(table.num_rows)} rows `, table.context ? `· ${table.context} ` : "", content),
    table.error ? errorBox(table.error) : null,
    table.commits.length
      ? h(
          "ul",
          { class: "commits" },
          table.commits.map((c) =>
            h(
              "li",
              null,
              `v${c.version} ${c.operation} · ${dateTime(c.timestamp_ms)}`,
              c.run_id ? [" · run ", link(`/runs/${encodeURIComponent(c.run_id)}`, c.run_id.slice(0, 12))] : "",
            ),
          ),
        )
      : null,
  );
}

export function lineagePage({ query, outlet, signal }: RouteContext): void {
  const model = query.get("model");
  const version = query.get("version");
  const alias = query.get("alias");
  const runId = query.get("run_id");
  const what = model ? `${model} ${alias ? `@${alias}` : `v${version ?? ""}`}` : `run ${runId ?? ""}`;
  document.title = `Lineage of ${what} · Cairn`;
  const messages = h("div", { class: "messages" });
  const graph = h("div", { class: "lineage" }, h("p", { class: "muted" }, "Tracing…"));
  outlet.append(
    model
      ? h("nav", { class: "crumbs" }, link("/models", "Models"), " / ", link(`/models/${encodeURIComponent(model)}`, model), " / lineage")
      : h("nav", { class: "crumbs" }, link("/", "Experiments"), " / ", runId ? link(`/runs/${encodeURIComponent(runId)}`, "run") : "run", " / lineage"),
    h("h1", null, `Lineage of ${what}`),
    messages,
    graph,
  );
  if (!model && !runId) {
    fill(graph);
    fill(messages, errorBox("Nothing to trace: open this page from a model version or a run."));
    return;
  }
  get<Lineage>(`${CAIRN}/lineage`, { model, version, alias, run_id: runId }, signal)
    .then(render)
    .catch((error: unknown) => {
      if (isAbort(error)) return;
      fill(graph);
      fill(messages, errorBox(messageOf(error)));
    });

  function render(found: Lineage): void {
    const m = found.model;
    const r = found.run;
    const inputs = found.tables.filter((t) => t.role !== "output");
    const outputs = found.tables.filter((t) => t.role === "output");
    const params = Object.entries(found.params).sort(([a], [b]) => a.localeCompare(b));
    fill(
      graph,
      m
        ? [
            column(
              node(
                "model",
                link(`/models/${encodeURIComponent(m.name)}`, `${m.name} v${m.version}`),
                m.aliases.length ? h("div", null, m.aliases.map((a) => h("span", { class: "badge alias" }, `@${a}`))) : null,
                facts([["Registered", dateTime(m.creation_timestamp)], ["Source", m.source]], ""),
              ),
            ),
            arrow(),
          ]
        : null,
      r
        ? [
            column(
              node(
                "run",
                link(`/runs/${encodeURIComponent(r.run_id)}`, r.run_name || r.run_id),
                h("div", null, h("span", { class: `badge status-${r.status.toLowerCase()}` }, r.status)),
                facts(
                  [
                    ["Run id", r.run_id],
                    ["Started", dateTime(r.start_time)],
                    ["User", r.user],
                    ["Reproduces", r.reproduces],
                  ],
                  "",
                ),
              ),
            ),
            arrow(),
            column(
              node("code", "Code", facts(Object.entries(found.code), "The run recorded no code version.")),
              node("params", `Parameters (${params.length})`, facts(params, "No parameters.")),
              node("environment", "Environment", facts(Object.entries(found.environment), "The run recorded no environment.")),
            ),
            arrow(),
            column(
              inputs.length ? inputs.map(tableNode) : node("table", "No table read", h("p", { class: "muted" }, "The run recorded no Delta table input.")),
              outputs.map(tableNode),
            ),
          ]
        : column(node("run", "No run", h("p", { class: "muted" }, "This model version was registered without a source run."))),
    );
  }
}
