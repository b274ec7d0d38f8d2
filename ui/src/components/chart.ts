// Metric curves on uPlot (canvas): one series per run, with the min-max band of each
// downsampled bucket, step / wall-time / relative-time x-axes, log scale, EMA smoothing and
// drag-to-zoom (double-click resets). Labels from the API reach uPlot, which sets them as text.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "../dom";
import { num } from "../format";
import type { MetricSeries } from "../types";

export const PALETTE = [
  "#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#e67700", "#5c940d",
  "#a61e4d", "#364fc7",
];

export type XMode = "step" | "wall" | "relative";

export interface Curve {
  label: string;
  series: MetricSeries;
  /** The run's start time, for relative time. */
  startTime: number;
}

export interface ChartSettings {
  xMode: XMode;
  log: boolean;
  smoothing: number; // 0 (none) .. 0.99
}

const X_LABELS: Record<XMode, string> = { step: "step", wall: "time", relative: "seconds since start" };

/** TensorBoard's debiased exponential moving average; gaps stay gaps. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

function xValues(curve: Curve, mode: XMode): number[] {
  const { steps, timestamps } = curve.series;
  if (mode === "step") return steps;
  if (mode === "wall") return timestamps.map((t) => t / 1000);
  return timestamps.map((t) => (t - curve.startTime) / 1000);
}

function positive(values: (number | null)[] | undefined, log: boolean): (number | null)[] | undefined {
  if (!values || !log) return values;
  return values.map((v) => (v !== null && v > 0 ? v : null));
}

/** Aligned uPlot data: x, then per curve its line and (when downsampled) its max and min. */
function build(
  curves: Curve[],
  settings: ChartSettings,
): { data: uPlot.AlignedData; series: uPlot.Series[]; bands: uPlot.Band[]; edges: number[] } {
  const tables: uPlot.AlignedData[] = [];
  const series: uPlot.Series[] = [{ label: X_LABELS[settings.xMode] }];
  const bands: uPlot.Band[] = [];
  const edges: number[] = []; // the band's max and min series: not listed in the legend
  curves.forEach((curve, i) => {
    const color = PALETTE[i % PALETTE.length] ?? "#2f6fde";
    const line = positive(smooth(curve.series.values, settings.smoothing), settings.log) ?? [];
    const columns: (number | null)[][] = [line];
    // uPlot shows points only where they are sparse enough to see: single values stay visible.
    series.push({ label: curve.label, stroke: color, width: 1.5, spanGaps: true });
    if (curve.series.downsampled && curve.series.mins && curve.series.maxs) {
      const base = series.length;
      columns.push(positive(curve.series.maxs, settings.log) ?? [], positive(curve.series.mins, settings.log) ?? []);
      series.push(
        { label: `${curve.label} (max)`, stroke: "transparent", width: 0, spanGaps: true, points: { show: false } },
        { label: `${curve.label} (min)`, stroke: "transparent", width: 0, spanGaps: true, points: { show: false } },
      );
      bands.push({ series: [base, base + 1], fill: `${color}33` });
      edges.push(base, base + 1);
    }
    tables.push([xValues(curve, settings.xMode), ...columns] as unknown as uPlot.AlignedData);
  });
  const data = tables.length === 1 ? (tables[0] as uPlot.AlignedData) : uPlot.join(tables);
  return { data, series, bands, edges };
}

export class MetricChart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private readonly holder: HTMLElement;
  private readonly observer: ResizeObserver;

  constructor(
    title: string,
    private curves: Curve[],
    private settings: ChartSettings,
    private readonly onZoom?: (range: [number, number] | null) => void,
  ) {
    this.holder = h("div", { class: "plot" });
    const total = curves.reduce((sum, c) => sum + c.series.total, 0);
    const downsampled = curves.some((c) => c.series.downsampled);
    const shown = curves.reduce((sum, c) => sum + c.series.steps.length, 0);
    this.el = h(
      "figure",
      { class: "chart", dataset: { metric: title } },
      h("h3", null, title),
      this.holder,
      h("figcaption", { class: "note" }, downsampled ? `${shown.toLocaleString()} of ${total.toLocaleString()} points (each bucket's min-max shaded)` : `${total.toLocaleString()} points`),
    );
    this.observer = new ResizeObserver(() => {
      const width = this.holder.clientWidth;
      if (!width) return;
      if (!this.plot) this.draw();
      else if (Math.abs(this.plot.width - width) > 2) this.plot.setSize({ width, height: 240 });
    });
    this.observer.observe(this.holder);
  }

  /** New data: a zoomed-in window (the zoom kept), or the whole history again (reset). */
  update(curves: Curve[], resetScales = false): void {
    this.curves = curves;
    if (!this.plot) return;
    const { data } = build(curves, this.settings);
    this.plot.setData(data, resetScales);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
  }

  private draw(): void {
    const { data, series, bands, edges } = build(this.curves, this.settings);
    const xMode = this.settings.xMode;
    const opts: uPlot.Options = {
      width: this.holder.clientWidth,
      height: 240,
      series,
      bands,
      scales: { x: { time: xMode === "wall" }, y: this.settings.log ? { distr: 3 } : {} },
      axes: [
        { label: X_LABELS[xMode], labelSize: 20, size: 36 },
        { size: 64, values: (_u, ticks) => ticks.map((t) => num(t)) },
      ],
      legend: { show: this.curves.length > 1 || this.curves.length === 0 },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [],
        setScale: [
          (u, key) => {
            if (key !== "x" || !this.onZoom) return;
            const { min, max } = u.scales.x;
            const all = u.data[0];
            const full = all.length > 0 && min !== undefined && max !== undefined && min <= (all[0] ?? 0) && max >= (all[all.length - 1] ?? 0);
            this.onZoom(full || min === undefined || max === undefined ? null : [min, max]);
          },
        ],
      },
    };
    this.plot = new uPlot(opts, data, this.holder);
    const rows = this.holder.querySelectorAll<HTMLElement>(".u-legend tr.u-series");
    for (const index of edges) rows[index]?.style.setProperty("display", "none");
  }
}
