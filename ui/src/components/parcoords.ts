// A parallel-coordinates plot on a canvas: one vertical axis per param (numeric or
// categorical) and the chosen metric last, one polyline per run in the run's colour.
// Labels are drawn with fillText, never parsed as markup.

import { h } from "../dom";
import { num } from "../format";

export interface ParRun {
  label: string;
  color: string;
  values: Record<string, string | number | null | undefined>;
}

interface Axis {
  key: string;
  position: (value: string | number | null | undefined) => number | null; // 0 (bottom) .. 1 (top)
  ticks: [number, string][];
}

function axisFor(key: string, runs: ParRun[]): Axis {
  const present = runs.map((r) => r.values[key]).filter((v): v is string | number => v !== null && v !== undefined);
  const numbers = present.map((v) => (typeof v === "number" ? v : Number(v)));
  if (present.length && numbers.every((n) => Number.isFinite(n))) {
    const lo = Math.min(...numbers);
    const hi = Math.max(...numbers);
    const span = hi - lo || 1;
    return {
      key,
      position: (v) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? null : hi === lo ? 0.5 : (Number(v) - lo) / span),
      ticks: hi === lo ? [[0.5, num(lo)]] : [[0, num(lo)], [1, num(hi)]],
    };
  }
  const categories = [...new Set(present.map(String))].sort();
  const at = (i: number) => (categories.length === 1 ? 0.5 : i / (categories.length - 1));
  return {
    key,
    position: (v) => {
      const i = v === null || v === undefined ? -1 : categories.indexOf(String(v));
      return i < 0 ? null : at(i);
    },
    ticks: categories.slice(0, 12).map((c, i) => [at(i), c]),
  };
}

export function parallelCoordinates(keys: string[], runs: ParRun[]): HTMLElement {
  const canvas = h("canvas", { role: "img", "aria-label": `Parallel coordinates of ${keys.join(", ")}` });
  const holder = h("div", { class: "parcoords" }, canvas);
  const axes = keys.map((key) => axisFor(key, runs));
  const draw = () => {
    const width = holder.clientWidth;
    if (!width) return;
    const height = 340;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const top = 42;
    const bottom = height - 24;
    const left = 60;
    const right = width - 60;
    const x = (i: number) => (axes.length === 1 ? (left + right) / 2 : left + ((right - left) * i) / (axes.length - 1));
    const y = (p: number) => bottom - (bottom - top) * p;
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    axes.forEach((axis, i) => {
      ctx.strokeStyle = "#9aa3b5";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x(i), top);
      ctx.lineTo(x(i), bottom);
      ctx.stroke();
      ctx.fillStyle = i === axes.length - 1 ? "#1d2330" : "#4a5368";
      ctx.fillText(axis.key.length > 22 ? `${axis.key.slice(0, 21)}…` : axis.key, x(i), 16);
      ctx.fillStyle = "#6b7386";
      for (const [p, label] of axis.ticks) {
        ctx.fillText(label.length > 14 ? `${label.slice(0, 13)}…` : label, x(i), y(p) + (p === 0 ? 14 : p === 1 ? -5 : -4));
      }
    });
    ctx.lineWidth = 2;
    for (const run of runs) {
      ctx.strokeStyle = run.color;
      ctx.beginPath();
      let drawing = false;
      axes.forEach((axis, i) => {
        const p = axis.position(run.values[axis.key]);
        if (p === null) {
          drawing = false;
          return;
        }
        if (drawing) ctx.lineTo(x(i), y(p));
        else ctx.moveTo(x(i), y(p));
        drawing = true;
      });
      ctx.stroke();
    }
  };
  new ResizeObserver(draw).observe(holder);
  return holder;
}
