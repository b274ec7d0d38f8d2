// A run: overview (params, metrics with latest/min/max, tags, system info, inputs), metric
// charts, and an artifacts browser with previews. ?tab=&metrics=&x=&log=&smooth=&artifact=.

import { CAIRN, MLFLOW, get, isAbort, messageOf } from "../api";
import { renderArtifacts } from "../components/artifacts";
import { chartControls, metricCharts, readSettings } from "../components/charts";
import { errorBox, fill, h, link } from "../dom";
import { dateTime, duration, num, metricValue } from "../format";
import { hrefWith, type RouteContext } from "../router";
import type { DatasetInput, Experiment, KeyValue, MetricSummary, Run } from "../types";
import { dataHref, recordedTable } from "./data";

const SYSTEM_PREFIXES = ["mlflow.", "cairn."];
const TABS: [string, string][] = [
  ["overview", "Overview"],
  ["charts", "Charts"],
  ["artifacts", "Artifacts"],
];

function kvTable(rows: [string, string | Node][], empty: string): HTMLElement {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    { class: "data kv" },
    h("tbody", null, rows.map(([k, v]) => h("tr", null, h("td", null, k), h("td", null, v)))),
  );
}

/** Dataset inputs; a Delta table version links to the Data page at that version. */
function inputsTable(inputs: DatasetInput[]): HTMLElement {
  return h(
    "table",
    { class: "data inputs" },
    h("thead", null, h("tr", null, ["Dataset", "Role", "Version", "Source", "Rows", "Digest", "Tags"].map((c) => h("th", null, c)))),
    h(
      "tbody",
      null,
      inputs.map((input) => {
        const tags = input.tags ?? [];
        const table = recordedTable(input.dataset, tags);
        const shownTags = tags.filter((t) => !table || !t.key.startsWith("cairn.data."));
        return h(
          "tr",
          { dataset: table ? { uri: table.uri, version: String(table.version), role: table.role } : {} },
          h("td", null, table ? link(dataHref(table.uri, { v: table.version }), input.dataset.name) : input.dataset.name),
          h("td", null, table ? h("span", { class: `badge role-${table.role}` }, table.role) : ""),
          h("td", null, table ? link(dataHref(table.uri, { v: table.version }), `v${table.version}`) : ""),
          h("td", { class: table ? "mono" : "" }, table ? table.uri : (input.dataset.source ?? "")),
          h("td", { class: "num" }, table?.numRows != null ? table.numRows.toLocaleString() : ""),
          h("td", { class: "mono" }, input.dataset.digest),
          h("td", null, shownTags.map((t) => `${t.key}=${t.value}`).join(", ")),
        );
      }),
    ),
  );
}

export function runPage({ params, query, outlet, signal }: RouteContext): () => void {
  const runId = params.id ?? "";
  const tab = query.get("tab") ?? "overview";
  const messages = h("div", { class: "messages" });
  const head = h("div");
  const body = h("div");
  const cleanups: (() => void)[] = [];
  outlet.append(head, messages, body);

  void load();
  return () => cleanups.forEach((fn) => fn());

  async function load(): Promise<void> {
    try {
      // The summary reads each metric's whole history: charts named in the URL do not wait.
      const summary = get<{ metrics: MetricSummary[] }>(`${CAIRN}/metrics/summary`, { run_id: runId }, signal);
      summary.catch(() => undefined); // awaited below where it is needed; errors surface there
      const { run } = await get<{ run: Run }>(`${MLFLOW}/runs/get`, { run_id: runId }, signal);
      renderHead(run);
      if (tab === "charts") await renderCharts(run, summary);
      else if (tab === "artifacts") cleanups.push(renderArtifacts(body, runId, query, signal));
      else renderOverview(run, (await summary).metrics);
    } catch (error) {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    }
  }

  function renderHead(run: Run): void {
    const info = run.info;
    const name = info.run_name || info.run_id;
    document.title = `${name} · Cairn`;
    const experimentLink = link(`/experiments/${encodeURIComponent(info.experiment_id)}`, `experiment ${info.experiment_id}`);
    get<{ experiment: Experiment }>(`${MLFLOW}/experiments/get`, { experiment_id: info.experiment_id }, signal)
      .then(({ experiment }) => (experimentLink.textContent = experiment.name))
      .catch(() => undefined); // the id stays shown
    fill(
      head,
      h(
        "nav",
        { class: "crumbs" },
        link("/", "Experiments"),
        " / ",
        experimentLink,
        " / run",
      ),
      h(
        "div",
        { class: "page-head" },
        h("h1", null, name, " ", h("span", { class: `badge status-${info.status.toLowerCase()}` }, info.status)),
        h(
          "span",
          { class: "head-links" },
          link(`/lineage?run_id=${encodeURIComponent(info.run_id)}`, "Lineage"),
          " · ",
          h("a", { href: `/compare?runs=${encodeURIComponent(info.run_id)}`, "data-link": true }, "Compare with…"),
        ),
      ),
      h(
        "p",
        { class: "muted" },
        h("span", { class: "mono" }, info.run_id),
        ` · started ${dateTime(info.start_time)}`,
        info.end_time ? ` · ran ${duration(info.end_time - (info.start_time ?? 0))}` : "",
        info.user_id ? ` · by ${info.user_id}` : "",
      ),
      h(
        "nav",
        { class: "tabs" },
        TABS.map(([key, label]) =>
          h("a", { href: hrefWith({ tab: key === "overview" ? null : key, artifact: null }), "data-link": true, class: key === tab ? "active" : "" }, label),
        ),
      ),
    );
  }

  function renderOverview(run: Run, summary: MetricSummary[]): void {
    const tags = run.data.tags ?? [];
    const isSystem = (t: KeyValue) => SYSTEM_PREFIXES.some((p) => t.key.startsWith(p));
    const sortKV = (items: KeyValue[]) => [...items].sort((a, b) => a.key.localeCompare(b.key));
    const metricRows = summary.map((m) =>
      h(
        "tr",
        null,
        h("td", null, link(hrefWith({ tab: "charts", metrics: m.key }), m.key)),
        h("td", { class: "num" }, num(metricValue(m.latest))),
        h("td", { class: "num" }, num(metricValue(m.min))),
        h("td", { class: "num" }, num(metricValue(m.max))),
        h("td", { class: "num" }, String(m.step)),
        h("td", { class: "num" }, m.count.toLocaleString()),
      ),
    );
    const inputs = run.inputs?.dataset_inputs ?? [];
    fill(
      body,
      h(
        "div",
        { class: "cols" },
        h(
          "section",
          null,
          h("h2", null, `Parameters (${run.data.params?.length ?? 0})`),
          kvTable(sortKV(run.data.params ?? []).map((p) => [p.key, p.value]), "No parameters."),
        ),
        h(
          "section",
          null,
          h("h2", null, `Metrics (${summary.length})`),
          summary.length
            ? h(
                "table",
                { class: "data metrics-summary" },
                h("thead", null, h("tr", null, ["Metric", "Latest", "Min", "Max", "Step", "Points"].map((c, i) => h("th", { class: i ? "num" : "" }, c)))),
                h("tbody", null, metricRows),
              )
            : h("p", { class: "muted" }, "No metrics."),
        ),
      ),
      h(
        "div",
        { class: "cols" },
        h("section", null, h("h2", null, "Tags"), kvTable(sortKV(tags.filter((t) => !isSystem(t))).map((t) => [t.key, t.value]), "No tags.")),
        h("section", null, h("h2", null, "System info"), kvTable(sortKV(tags.filter(isSystem)).map((t) => [t.key, t.value]), "No system tags.")),
      ),
      h(
        "section",
        null,
        h("h2", null, `Inputs (${inputs.length})`),
        inputs.length ? inputsTable(inputs) : h("p", { class: "muted" }, "No dataset inputs."),
      ),
    );
  }

  async function renderCharts(run: Run, summary: Promise<{ metrics: MetricSummary[] }>): Promise<void> {
    const keys = (run.data.metrics ?? []).map((m) => m.key).sort();
    const requested = (query.get("metrics") ?? "").split(",").map(decodeURIComponent).filter((k) => keys.includes(k));
    let chosen = requested;
    if (!chosen.length) {
      // By default, the metrics with a history (more than one point) first.
      const found = (await summary).metrics;
      const curves = found.filter((m) => m.count > 1).map((m) => m.key);
      chosen = (curves.length ? curves : keys).slice(0, 6);
    }
    const settings = readSettings(query);
    const charts = h("div", { class: "charts" });
    fill(
      body,
      chartControls(settings, keys, chosen),
      keys.length ? charts : h("p", { class: "muted" }, "This run has no metrics."),
    );
    cleanups.push(metricCharts(charts, chosen, [{ runId, label: run.info.run_name || runId, startTime: run.info.start_time ?? 0 }], settings, signal, (error) => fill(messages, errorBox(messageOf(error)))));
  }
}
