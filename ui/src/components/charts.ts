// The chart grid shared by the run and compare pages: controls that live in the URL
// (?metrics=&x=&log=&smooth=), and one chart per metric with a curve per run, fetched
// downsampled from the server and refetched at full resolution when zoomed in by step.

import { CAIRN, get, isAbort } from "../api";
import { h } from "../dom";
import { hrefWith, navigate } from "../router";
import type { MetricSeries } from "../types";
import { MetricChart, type ChartSettings, type Curve, type XMode } from "./chart";

export interface ChartRun {
  runId: string;
  label: string;
  startTime: number;
  /** When curves are grouped: the group this run is drawn in. */
  group?: string;
}

const MAX_POINTS = 1000;
const PICKER_LIMIT = 60;

export function readSettings(query: URLSearchParams): ChartSettings {
  const x = query.get("x");
  const smoothing = Number(query.get("smooth") ?? "0");
  return {
    xMode: x === "wall" || x === "relative" ? x : "step",
    log: query.get("log") === "1",
    smoothing: Number.isFinite(smoothing) ? Math.min(Math.max(smoothing, 0), 0.99) : 0,
  };
}

export function chartControls(settings: ChartSettings, keys: string[], chosen: string[]): HTMLElement {
  const setMetrics = (next: string[]) => navigate(hrefWith({ metrics: next.map(encodeURIComponent).join(",") || null }));
  const picker = h("div", { class: "metric-picker", role: "group", "aria-label": "Metrics to chart" });
  const find = h("input", { type: "search", placeholder: "Find a metric", "aria-label": "Find a metric" });
  const drawPicker = () => {
    const needle = find.value.trim().toLowerCase();
    const matching = keys.filter((k) => !needle || k.toLowerCase().includes(needle));
    picker.replaceChildren(
      ...matching.slice(0, PICKER_LIMIT).map((key) => {
        const on = chosen.includes(key);
        return h(
          "button",
          {
            type: "button",
            class: on ? "active" : "",
            "aria-pressed": String(on),
            on: { click: () => setMetrics(on ? chosen.filter((k) => k !== key) : [...chosen, key]) },
          },
          key,
        );
      }),
      matching.length > PICKER_LIMIT ? h("span", { class: "muted" }, `…${matching.length - PICKER_LIMIT} more`) : "",
    );
  };
  find.addEventListener("input", drawPicker);
  drawPicker();
  const xSelect = h(
    "select",
    { "aria-label": "X axis", on: { change: (e: Event) => navigate(hrefWith({ x: ((e.target as HTMLSelectElement).value as XMode) === "step" ? null : (e.target as HTMLSelectElement).value })) } },
    (["step", "wall", "relative"] as XMode[]).map((mode) =>
      h("option", { value: mode, selected: settings.xMode === mode }, mode === "step" ? "Step" : mode === "wall" ? "Wall time" : "Relative time"),
    ),
  );
  const log = h("input", {
    type: "checkbox",
    checked: settings.log,
    on: { change: (e: Event) => navigate(hrefWith({ log: (e.target as HTMLInputElement).checked ? "1" : null })) },
  });
  const smoothing = h("input", {
    type: "range",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: String(settings.smoothing),
    "aria-label": "Smoothing",
    on: { change: (e: Event) => navigate(hrefWith({ smooth: (e.target as HTMLInputElement).value === "0" ? null : (e.target as HTMLInputElement).value }), true) },
  });
  return h(
    "div",
    null,
    keys.length > PICKER_LIMIT / 2 ? find : null,
    picker,
    h(
      "div",
      { class: "chart-controls" },
      h("label", null, "X axis ", xSelect),
      h("label", null, log, "Log scale"),
      h("label", null, "Smoothing ", smoothing, h("span", { class: "muted" }, settings.smoothing.toFixed(2))),
      h("span", { class: "muted" }, "Drag across a chart to zoom, double-click to reset."),
    ),
  );
}

function fetchSeries(
  run: ChartRun,
  key: string,
  signal: AbortSignal,
  range?: [number, number],
): Promise<Curve> {
  return get<MetricSeries>(
    `${CAIRN}/metrics/get-history-downsampled`,
    {
      run_id: run.runId,
      metric_key: key,
      max_points: MAX_POINTS,
      start_step: range ? Math.floor(range[0]) : undefined,
      end_step: range ? Math.ceil(range[1]) : undefined,
    },
    signal,
  ).then((series) => ({ label: run.label, series, startTime: run.startTime }));
}

/** One curve per group: at each step, the mean of the group's runs and, shaded, their min and
 * max (of the bucket min and max where a run's history was downsampled). */
export function groupCurves(curves: Curve[], runs: ChartRun[]): Curve[] {
  const groups = new Map<string, { runs: number; at: Map<number, { sum: number; n: number; lo: number; hi: number }> }>();
  curves.forEach((curve, i) => {
    const name = runs[i]?.group ?? "";
    let group = groups.get(name);
    if (!group) groups.set(name, (group = { runs: 0, at: new Map() }));
    group.runs++;
    const { steps, values, mins, maxs } = curve.series;
    steps.forEach((step, j) => {
      const value = values[j];
      if (value === null || value === undefined) return;
      const lo = mins?.[j] ?? value;
      const hi = maxs?.[j] ?? value;
      const cell = group.at.get(step);
      if (cell) {
        cell.sum += value;
        cell.n++;
        cell.lo = Math.min(cell.lo, lo);
        cell.hi = Math.max(cell.hi, hi);
      } else group.at.set(step, { sum: value, n: 1, lo, hi });
    });
  });
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
    .map(([name, group]) => {
      const steps = [...group.at.keys()].sort((a, b) => a - b);
      const cells = steps.map((s) => group.at.get(s)!);
      return {
        label: `${name} (${group.runs} run${group.runs === 1 ? "" : "s"})`,
        startTime: 0,
        series: {
          metric_key: curves[0]?.series.metric_key ?? "",
          total: curves.reduce((sum, c) => sum + c.series.total, 0),
          downsampled: true,
          steps,
          timestamps: steps,
          values: cells.map((c) => c.sum / c.n),
          mins: cells.map((c) => c.lo),
          maxs: cells.map((c) => c.hi),
        },
      };
    });
}

/** Draw one chart per metric into `container`; returns a cleanup. */
export function metricCharts(
  container: HTMLElement,
  keys: string[],
  runs: ChartRun[],
  settings: ChartSettings,
  signal: AbortSignal,
  onError: (error: unknown) => void,
): () => void {
  const charts: MetricChart[] = [];
  for (const key of keys) {
    const slot = h("figure", { class: "chart loading", dataset: { metric: key } }, h("h3", null, key), h("p", { class: "muted" }, "Loading…"));
    container.append(slot);
    // Runs without this metric simply have no curve (a 404 would name a missing run, not key).
    const grouped = runs.some((run) => run.group !== undefined);
    const shape = (all: Curve[]) => {
      const present = all.map((c, i) => [c, runs[i]] as const).filter(([c]) => c.series.total > 0);
      const kept = present.map(([c]) => c);
      return grouped ? groupCurves(kept, present.map(([, run]) => run as ChartRun)) : kept;
    };
    Promise.all(runs.map((run) => fetchSeries(run, key, signal)))
      .then((all) => {
        const curves = shape(all);
        let zoomed = false;
        const chart = new MetricChart(key, curves, settings, (range) => {
          const downsampled = curves.some((c) => c.series.downsampled);
          if (settings.xMode !== "step" || !downsampled || (range === null && !zoomed)) return;
          zoomed = range !== null;
          if (range === null) {
            chart.update(curves, true);
            return;
          }
          Promise.all(runs.map((run) => fetchSeries(run, key, signal, range)))
            .then((detail) => chart.update(shape(detail)))
            .catch((error: unknown) => isAbort(error) || onError(error));
        });
        charts.push(chart);
        slot.replaceWith(chart.el);
      })
      .catch((error: unknown) => {
        if (!isAbort(error)) onError(error);
      });
  }
  return () => charts.forEach((c) => c.destroy());
}
