// Compare runs: a diff table of params, metrics and tags with the differences highlighted,
// a parallel-coordinates plot of the params against a metric, and overlaid curves.
// The Data rows show which version of each Delta table every run read; when the runs read
// different versions of a table, a note links to the Data page's diff of those versions.
// ?runs=a,b&metrics=&x=&log=&smooth=&pc=<metric>&diff=1

import { MLFLOW, get, isAbort, messageOf } from "../api";
import { PALETTE } from "../components/chart";
import { chartControls, metricCharts, readSettings } from "../components/charts";
import { parallelCoordinates } from "../components/parcoords";
import { errorBox, fill, h, link } from "../dom";
import { metricValue, num } from "../format";
import { hrefWith, navigate, type RouteContext } from "../router";
import type { Run } from "../types";
import { dataHref, recordedTables } from "./data";

const SYSTEM_PREFIXES = ["mlflow.", "cairn."];

type Row = { section: string; key: string; values: (string | null)[]; numeric: (number | null)[] };

function rowsOf(runs: Run[]): Row[] {
  const collect = (section: string, pick: (run: Run) => Map<string, string>) => {
    const maps = runs.map(pick);
    const keys = [...new Set(maps.flatMap((m) => [...m.keys()]))].sort();
    return keys.map((key) => {
      const values = maps.map((m) => m.get(key) ?? null);
      return { section, key, values, numeric: values.map((v) => (v === null ? null : metricValue(v))) };
    });
  };
  return [
    ...collect("Params", (r) => new Map((r.data.params ?? []).map((p) => [p.key, p.value]))),
    ...collect("Data", readVersions),
    ...collect("Metrics", (r) => new Map((r.data.metrics ?? []).map((m) => [m.key, String(m.value)]))),
    ...collect(
      "Tags",
      (r) => new Map((r.data.tags ?? []).filter((t) => !SYSTEM_PREFIXES.some((p) => t.key.startsWith(p))).map((t) => [t.key, t.value])),
    ),
  ];
}

/** Table URI -> the versions the run read ("v3", or "v2, v3"). */
function readVersions(run: Run): Map<string, string> {
  const found = new Map<string, string>();
  for (const table of recordedTables(run)) {
    if (table.role !== "input") continue;
    const before = found.get(table.uri);
    found.set(table.uri, before ? `${before}, v${table.version}` : `v${table.version}`);
  }
  return found;
}

/** A note per table the runs read at different versions, linking to the diff. */
function dataNotes(runs: Run[]): HTMLElement[] {
  const versions = new Map<string, { name: string; seen: Set<number> }>();
  for (const run of runs) {
    for (const table of recordedTables(run)) {
      if (table.role !== "input") continue;
      const entry = versions.get(table.uri) ?? { name: table.name, seen: new Set<number>() };
      entry.seen.add(table.version);
      versions.set(table.uri, entry);
    }
  }
  return [...versions.entries()]
    .filter(([, entry]) => entry.seen.size > 1)
    .map(([uri, entry]) => {
      const sorted = [...entry.seen].sort((a, b) => a - b);
      const first = sorted[0] ?? 0;
      const last = sorted[sorted.length - 1] ?? 0;
      return h(
        "div",
        { class: "notice data-note", dataset: { uri } },
        `These runs read different versions of ${entry.name} (${sorted.map((v) => `v${v}`).join(", ")}): `,
        link(dataHref(uri, { from: first, to: last }), `see what changed from v${first} to v${last}`),
      );
    });
}

export function comparePage({ query, outlet, signal }: RouteContext): () => void {
  const ids = (query.get("runs") ?? "").split(",").map(decodeURIComponent).filter(Boolean);
  const messages = h("div", { class: "messages" });
  const cleanups: (() => void)[] = [];
  document.title = "Compare runs · Cairn";
  outlet.append(h("nav", { class: "crumbs" }, link("/", "Experiments"), " / compare"), h("h1", null, `Comparing ${ids.length} runs`), messages);
  if (ids.length < 1) {
    fill(messages, errorBox("No runs to compare: select runs in a runs table and press Compare."));
    return () => undefined;
  }
  const body = h("div");
  outlet.append(body);
  void load();
  return () => cleanups.forEach((fn) => fn());

  async function load(): Promise<void> {
    let runs: Run[];
    try {
      runs = (await Promise.all(ids.map((id) => get<{ run: Run }>(`${MLFLOW}/runs/get`, { run_id: id }, signal)))).map((r) => r.run);
    } catch (error) {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
      return;
    }
    const names = runs.map((r) => r.info.run_name || r.info.run_id);
    const colors = runs.map((_, i) => PALETTE[i % PALETTE.length] ?? "#2f6fde");
    const rows = rowsOf(runs);
    const onlyDiff = query.get("diff") === "1";
    const differs = (row: Row) => new Set(row.values).size > 1;
    const shownRows = rows.filter((row) => !onlyDiff || differs(row));
    const metricKeys = [...new Set(runs.flatMap((r) => (r.data.metrics ?? []).map((m) => m.key)))].sort();
    const paramRows = rows.filter((r) => r.section === "Params");
    const varying = paramRows.filter(differs).map((r) => r.key);
    const pcMetric = metricKeys.includes(query.get("pc") ?? "") ? (query.get("pc") as string) : metricKeys[0];

    const legend = h(
      "ul",
      { class: "run-legend" },
      runs.map((run, i) =>
        h("li", null, h("span", { class: "legend-swatch", style: { background: colors[i] } }), link(`/runs/${encodeURIComponent(run.info.run_id)}`, names[i] ?? "")),
      ),
    );

    let section = "";
    const table = h(
      "table",
      { class: "data diff" },
      h("thead", null, h("tr", null, h("th", null, ""), names.map((name, i) => h("th", null, h("span", { class: "legend-swatch", style: { background: colors[i] } }), name)))),
      h(
        "tbody",
        null,
        shownRows.flatMap((row) => {
          const out: HTMLElement[] = [];
          if (row.section !== section) {
            section = row.section;
            out.push(h("tr", { class: "section" }, h("th", { colspan: String(runs.length + 1) }, section)));
          }
          out.push(
            h(
              "tr",
              { class: differs(row) ? "differs" : "", dataset: { key: `${row.section.toLowerCase()}.${row.key}` } },
              h("td", null, row.key),
              row.values.map((value, i) =>
                h("td", { class: row.section === "Metrics" ? "num" : "" }, value === null ? "—" : row.section === "Metrics" ? num(row.numeric[i]) : value),
              ),
            ),
          );
          return out;
        }),
      ),
    );

    const pcSelect = h(
      "select",
      { "aria-label": "Metric for parallel coordinates", on: { change: (e: Event) => navigate(hrefWith({ pc: (e.target as HTMLSelectElement).value }), true) } },
      metricKeys.map((key) => h("option", { value: key, selected: key === pcMetric }, key)),
    );
    const axes = [...(varying.length ? varying : paramRows.map((r) => r.key)).slice(0, 12), ...(pcMetric ? [pcMetric] : [])];
    const parRuns = runs.map((run, i) => {
      const values: Record<string, string | number | null> = {};
      for (const p of run.data.params ?? []) values[p.key] = p.value;
      const metric = (run.data.metrics ?? []).find((m) => m.key === pcMetric);
      if (pcMetric) values[pcMetric] = metric ? metricValue(metric.value) : null;
      return { label: names[i] ?? "", color: colors[i] ?? "#2f6fde", values };
    });

    const keys = metricKeys;
    const requested = (query.get("metrics") ?? "").split(",").map(decodeURIComponent).filter((k) => keys.includes(k));
    const chosen = requested.length ? requested : keys.slice(0, 4);
    const group = paramRows.some((r) => r.key === query.get("group")) ? (query.get("group") as string) : "";
    // Grouped curves average runs step by step: drawn against step only.
    const settings = { ...readSettings(query), ...(group ? { xMode: "step" as const } : {}) };
    const charts = h("div", { class: "charts" });
    const groupSelect = h(
      "select",
      { "aria-label": "Group curves by", on: { change: (e: Event) => navigate(hrefWith({ group: (e.target as HTMLSelectElement).value || null })) } },
      h("option", { value: "" }, "one curve per run"),
      paramRows.map((r) => h("option", { value: r.key, selected: r.key === group }, `params.${r.key}: mean, min-max`)),
    );

    fill(
      body,
      legend,
      dataNotes(runs),
      h("h2", null, "Differences"),
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", checked: onlyDiff, on: { change: (e: Event) => navigate(hrefWith({ diff: (e.target as HTMLInputElement).checked ? "1" : null }), true) } }),
        " Only rows that differ",
      ),
      table,
      h("h2", null, "Parameters vs ", pcSelect),
      axes.length > 1 ? parallelCoordinates(axes, parRuns) : h("p", { class: "muted" }, "Needs params and a metric to plot."),
      h("h2", null, "Curves"),
      h("label", null, "Group by ", groupSelect),
      chartControls(settings, keys, chosen),
      keys.length ? charts : h("p", { class: "muted" }, "These runs have no metrics."),
    );
    const chartRuns = runs.map((run, i) => ({
      runId: run.info.run_id,
      label: names[i] ?? "",
      startTime: run.info.start_time ?? 0,
      group: group ? (run.data.params?.find((p) => p.key === group)?.value ?? "(none)") : undefined,
    }));
    cleanups.push(metricCharts(charts, chosen, chartRuns, settings, signal, (error) => fill(messages, errorBox(messageOf(error)))));
  }
}
