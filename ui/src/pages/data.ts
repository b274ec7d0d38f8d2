// Delta tables that runs recorded. /data lists them; /data?uri=U shows one table's history
// (versions, operations, times, and the runs that read or wrote each version); &v=N describes
// version N (rows, files, schema); &from=A&to=B diffs two versions (schema, rows, column
// statistics with the shifted columns highlighted, commits in between).

import { CAIRN, get, isAbort, messageOf } from "../api";
import { errorBox, fill, h, link, type Child } from "../dom";
import { ago, bytes, count, dateTime, num } from "../format";
import { hrefWith, navigate, type RouteContext } from "../router";
import type { ColumnStats, DataTable, Run, TableCommit, TableDiff, TableHistory, TableUse, TableVersionInfo } from "../types";

/** The Data page URL of a table (optionally at a version, or a diff). */
export function dataHref(uri: string, extra: Record<string, string | number> = {}): string {
  const params = new URLSearchParams({ uri });
  for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
  return `/data?${params.toString()}`;
}

/** A Delta table version a run recorded (an MLflow dataset input of source type delta_table). */
export interface RecordedTable {
  uri: string;
  version: number;
  role: string;
  name: string;
  context: string | null;
  numRows: number | null;
}

/** The run's Delta table inputs; other dataset inputs are left out. */
export function recordedTables(run: Run): RecordedTable[] {
  const found: RecordedTable[] = [];
  for (const input of run.inputs?.dataset_inputs ?? []) {
    const table = recordedTable(input.dataset, input.tags ?? []);
    if (table) found.push(table);
  }
  return found;
}

export function recordedTable(
  dataset: { name: string; source_type?: string; source?: string; profile?: string },
  tags: { key: string; value: string }[],
): RecordedTable | null {
  if (dataset.source_type !== "delta_table" || !dataset.source) return null;
  let source: { path?: unknown; delta_table_version?: unknown };
  try {
    source = JSON.parse(dataset.source) as typeof source;
  } catch {
    return null;
  }
  const tag = (key: string) => tags.find((t) => t.key === key)?.value;
  const version = Number(tag("cairn.data.version") ?? source.delta_table_version);
  if (typeof source.path !== "string" || !Number.isInteger(version)) return null;
  let numRows: number | null = null;
  try {
    const profile = dataset.profile ? (JSON.parse(dataset.profile) as { num_rows?: unknown }) : {};
    if (typeof profile.num_rows === "number") numRows = profile.num_rows;
  } catch {
    // a profile that is not JSON: the row count stays unknown
  }
  return {
    uri: source.path,
    version,
    role: tag("cairn.data.role") ?? "input",
    name: dataset.name,
    context: tag("mlflow.data.context") ?? null,
    numRows,
  };
}

const RUNS_PER_CELL = 8;

function runLink(use: { run_id: string; run_name: string | null }): HTMLElement {
  return link(`/runs/${encodeURIComponent(use.run_id)}`, use.run_name || use.run_id.slice(0, 12));
}

function value(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return num(v);
  return String(v);
}

export function dataPage(ctx: RouteContext): void {
  const uri = ctx.query.get("uri");
  if (uri) tablePage(ctx, uri);
  else tablesPage(ctx);
}

function tablesPage({ outlet, signal }: RouteContext): void {
  document.title = "Data · Cairn";
  const messages = h("div", { class: "messages" });
  const body = h("tbody");
  outlet.append(
    h("h1", null, "Data"),
    h("p", { class: "muted" }, "Delta tables that runs read or wrote, most recently used first."),
    messages,
    h(
      "table",
      { class: "data tables" },
      h("thead", null, h("tr", null, ["Table", "URI", "Versions used", "Runs", "Last used"].map((c) => h("th", null, c)))),
      body,
    ),
  );
  get<{ tables: DataTable[] }>(`${CAIRN}/data/tables`, undefined, signal)
    .then(({ tables }) => {
      fill(
        body,
        tables.length
          ? tables.map((table) =>
              h(
                "tr",
                { dataset: { uri: table.uri } },
                h("td", null, link(dataHref(table.uri), table.name)),
                h("td", { class: "mono" }, table.uri),
                h(
                  "td",
                  null,
                  table.versions.map((v, i) => [i ? ", " : "", link(dataHref(table.uri, { v: v.version }), `v${v.version}`)]),
                ),
                h("td", { class: "num" }, count(table.versions.reduce((n, v) => n + v.readers + v.writers, 0))),
                h("td", { title: dateTime(table.last_used) }, ago(table.last_used)),
              ),
            )
          : h(
              "tr",
              null,
              h("td", { colspan: "5", class: "muted" }, "No run has recorded a table yet: read or write one with cairn.data inside a run."),
            ),
      );
    })
    .catch((error: unknown) => {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    });
}

function tablePage({ query, outlet, signal }: RouteContext, uri: string): void {
  const selected = query.has("v") ? Number(query.get("v")) : null;
  const from = query.get("from");
  const to = query.get("to");
  const messages = h("div", { class: "messages" });
  const title = h("h1", null, uri.split("/").filter(Boolean).pop() ?? uri);
  const historyPart = h("section", null, h("p", { class: "muted" }, "Loading the history…"));
  const versionPart = h("section");
  const diffPart = h("section");
  document.title = `${title.textContent} · Data · Cairn`;
  outlet.append(
    h("nav", { class: "crumbs" }, link("/data", "Data"), " / table"),
    title,
    h("p", { class: "mono muted" }, uri),
    messages,
    diffPart,
    versionPart,
    historyPart,
  );
  const fail = (error: unknown) => {
    if (!isAbort(error)) messages.append(errorBox(messageOf(error)));
  };

  get<TableHistory>(`${CAIRN}/data/history`, { uri }, signal)
    .then((found) => {
      title.textContent = found.name;
      document.title = `${found.name} · Data · Cairn`;
      if (found.error) messages.append(errorBox(`The table's history cannot be read: ${found.error}`));
      renderHistory(found);
    })
    .catch(fail);
  if (selected !== null && Number.isInteger(selected)) {
    get<TableVersionInfo>(`${CAIRN}/data/version`, { uri, version: selected }, signal).then(renderVersion).catch(fail);
  }
  if (from !== null && to !== null) {
    fill(diffPart, h("h2", null, `Diff v${from} → v${to}`), h("p", { class: "muted" }, "Reading both versions…"));
    get<TableDiff>(`${CAIRN}/data/diff`, { uri, from, to }, signal)
      .then(renderDiff)
      .catch((error: unknown) => {
        fill(diffPart);
        fail(error);
      });
  }

  function renderHistory(found: TableHistory): void {
    const byVersion = new Map<number, TableUse[]>();
    for (const use of found.uses) {
      const list = byVersion.get(use.version) ?? [];
      list.push(use);
      byVersion.set(use.version, list);
    }
    const versions = [...new Set([...found.commits.map((c) => c.version), ...found.versions.map((v) => v.version), ...byVersion.keys()])].sort((a, b) => b - a);
    const commits = new Map(found.commits.map((c) => [c.version, c]));
    const oldestShown = found.commits.length ? Math.min(...found.commits.map((c) => c.version)) : -1;
    const counts = new Map(found.versions.map((v) => [v.version, v]));
    const runsOf = (version: number, role: string): Child => {
      const uses = (byVersion.get(version) ?? []).filter((u) => u.role === role);
      const recorded = counts.get(version);
      const total = Math.max(uses.length, (role === "input" ? recorded?.readers : recorded?.writers) ?? 0);
      if (!total) return h("span", { class: "muted" }, "—");
      const shown = uses.slice(0, RUNS_PER_CELL);
      return [shown.map((u, i) => [i ? ", " : "", runLink(u)]), total > shown.length ? h("span", { class: "muted" }, ` +${count(total - shown.length)} more`) : null];
    };
    const options = (chosen: string | null) => versions.map((v) => h("option", { value: String(v), selected: String(v) === chosen }, `v${v}`));
    const fromSelect = h("select", { name: "from", "aria-label": "Diff from version" }, options(from ?? String(versions[1] ?? versions[0] ?? "")));
    const toSelect = h("select", { name: "to", "aria-label": "Diff to version" }, options(to ?? String(versions[0] ?? "")));
    fill(
      historyPart,
      h("h2", null, `History (${versions.length} versions)`),
      versions.length > 1
        ? h(
            "form",
            {
              class: "inline-form diff-form",
              on: {
                submit: (event: SubmitEvent) => {
                  event.preventDefault();
                  navigate(hrefWith({ from: fromSelect.value, to: toSelect.value }));
                },
              },
            },
            h("span", null, "Compare "),
            fromSelect,
            h("span", null, " with "),
            toSelect,
            h("button", { type: "submit", class: "primary" }, "Diff"),
          )
        : null,
      h(
        "table",
        { class: "data history" },
        h("thead", null, h("tr", null, ["Version", "Time", "Operation", "By", "Read by", "Written by", ""].map((c) => h("th", null, c)))),
        h(
          "tbody",
          null,
          versions.map((version) => {
            const commit: TableCommit | undefined = commits.get(version);
            return h(
              "tr",
              { class: version === selected ? "selected" : "", dataset: { version: String(version) } },
              h("td", null, link(hrefWith({ v: String(version) }), `v${version}`)),
              h("td", null, commit ? dateTime(commit.timestamp_ms) : ""),
              h("td", null, commit ? commit.operation : h("span", { class: "muted" }, version < oldestShown ? "older than the commits shown" : "not in the log")),
              h(
                "td",
                null,
                commit?.run_id ? link(`/runs/${encodeURIComponent(commit.run_id)}`, commit.run_id.slice(0, 12)) : "",
                commit?.run_id && commit.user ? " · " : "",
                commit?.user ?? "",
              ),
              h("td", { class: "readers" }, runsOf(version, "input")),
              h("td", { class: "writers" }, runsOf(version, "output")),
              h(
                "td",
                { class: "actions" },
                versions.includes(version - 1) ? link(hrefWith({ from: String(version - 1), to: String(version) }), "diff vs previous") : "",
              ),
            );
          }),
        ),
      ),
    );
  }

  function renderVersion(info: TableVersionInfo): void {
    fill(
      versionPart,
      h("h2", null, `Version ${info.version}`),
      h(
        "table",
        { class: "data kv version-info" },
        h(
          "tbody",
          null,
          (
            [
              ["Rows", info.num_rows === null ? "unknown" : count(info.num_rows)],
              ["Files", count(info.num_files)],
              ["Size", bytes(info.size_bytes)],
              ["Committed", dateTime(info.timestamp_ms)],
              ["Schema hash", info.schema_hash],
              ["Content digest", info.content_digest],
            ] as [string, string][]
          ).map(([k, v]) => h("tr", null, h("td", null, k), h("td", { class: k.includes("hash") || k.includes("digest") ? "mono" : "" }, v))),
        ),
      ),
      h("h3", null, "Schema"),
      h(
        "table",
        { class: "data kv schema" },
        h("tbody", null, Object.entries(info.schema).map(([column, kind]) => h("tr", null, h("td", null, column), h("td", { class: "mono" }, kind)))),
      ),
    );
  }

  function renderDiff(found: TableDiff): void {
    const shifted = new Set(found.shifted);
    const stat = (s: ColumnStats | null, pick: (s: ColumnStats) => unknown) => (s ? value(pick(s)) : "—");
    const fields: [string, (s: ColumnStats) => unknown][] = [
      ["nulls", (s) => s.nulls],
      ["min", (s) => s.min],
      ["max", (s) => s.max],
      ["mean", (s) => s.mean],
      ["std", (s) => s.std],
      ["distinct", (s) => s.distinct],
    ];
    const delta = found.to_rows - found.from_rows;
    fill(
      diffPart,
      h("h2", null, `Diff v${found.from_version} → v${found.to_version}`),
      h(
        "p",
        { class: "diff-summary" },
        `Rows ${count(found.from_rows)} → ${count(found.to_rows)} (${delta >= 0 ? "+" : ""}${count(delta)}). `,
        found.shifted.length
          ? h("strong", { class: "shift-note" }, `Distribution shifted: ${found.shifted.join(", ")}.`)
          : "No column's distribution shifted.",
      ),
      found.schema_changes.length
        ? h(
            "ul",
            { class: "schema-changes" },
            found.schema_changes.map((c) =>
              h(
                "li",
                null,
                h("code", null, c.column),
                c.change === "added"
                  ? ` added (${c.new_type ?? ""})`
                  : c.change === "removed"
                    ? ` removed (was ${c.old_type ?? ""})`
                    : ` type ${c.old_type ?? ""} → ${c.new_type ?? ""}`,
              ),
            ),
          )
        : h("p", { class: "muted" }, "Same schema."),
      h(
        "table",
        { class: "data column-diff" },
        h(
          "thead",
          null,
          h("tr", null, h("th", null, "Column"), h("th", null, "Type"), fields.map(([name]) => h("th", { class: "num" }, name))),
        ),
        h(
          "tbody",
          null,
          Object.entries(found.columns).map(([column, { from: old, to: now }]) =>
            h(
              "tr",
              { class: shifted.has(column) ? "shifted" : "", dataset: { column } },
              h("td", null, column, shifted.has(column) ? h("span", { class: "badge shifted-badge" }, "shifted") : null),
              h("td", { class: "mono" }, old && now && old.type !== now.type ? `${old.type} → ${now.type}` : (now ?? old)?.type ?? ""),
              fields.map(([, pick]) => {
                const a = stat(old, pick);
                const b = stat(now, pick);
                return h("td", { class: a === b ? "num" : "num changed" }, a === b ? a : `${a} → ${b}`);
              }),
            ),
          ),
        ),
      ),
      found.commits.length
        ? [
            h("h3", null, "Commits in between"),
            h(
              "ul",
              { class: "commits" },
              found.commits.map((c) =>
                h(
                  "li",
                  null,
                  `v${c.version} ${c.operation} · ${dateTime(c.timestamp_ms)}`,
                  c.user ? ` · ${c.user}` : "",
                  c.run_id ? [" · run ", link(`/runs/${encodeURIComponent(c.run_id)}`, c.run_id.slice(0, 12))] : "",
                ),
              ),
            ),
          ]
        : null,
    );
  }
}
