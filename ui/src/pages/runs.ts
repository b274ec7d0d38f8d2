// The runs table of an experiment: virtualized rows and columns, server-side sort on any
// column, a filter box taking the search language, a column chooser and run selection. Every
// choice lives in the URL: ?filter=&order=&cols=&sel=.

import { ApiError, CAIRN, MLFLOW, get, isAbort, messageOf, post } from "../api";
import { VirtualGrid, type GridColumn } from "../components/grid";
import { errorBox, fill, h, link } from "../dom";
import { count, dateTime, duration, num } from "../format";
import { hrefWith, navigate, setQuery, type RouteContext } from "../router";
import type { ColumnKeys, Experiment, RunTablePage, TableRun } from "../types";

const PAGE = 100;
const MAX_IN_FLIGHT = 3;
const DEFAULT_KEYS = 30; // per kind, when the URL names no columns
const KEY_SAMPLE = 1000;

type Kind = "attr" | "params" | "metrics" | "tags";

interface Column extends GridColumn {
  kind: Kind;
  key: string;
  orderKey?: string;
}

const ATTRIBUTES: Column[] = [
  attr("start_time", "Started", 150, "attributes.start_time"),
  attr("duration", "Duration", 90),
  attr("status", "Status", 90, "attributes.status"),
  attr("user_id", "User", 90, "attributes.user_id"),
  attr("end_time", "Ended", 150, "attributes.end_time"),
];
const DEFAULT_ATTRIBUTES = ["start_time", "duration", "status", "user_id"];

function attr(key: string, label: string, width: number, orderKey?: string): Column {
  return { id: `attr.${key}`, kind: "attr", key, label, width, orderKey, sortable: !!orderKey };
}

function keyed(kind: Exclude<Kind, "attr">, key: string): Column {
  return {
    id: `${kind}.${key}`,
    kind,
    key,
    label: key,
    title: `${kind}.${key}`,
    width: kind === "tags" ? 140 : 110,
    numeric: kind === "metrics",
    orderKey: `${kind}.\`${key}\``,
    sortable: true,
  };
}

function parseColumnIds(value: string | null): string[] | null {
  if (value === null) return null;
  return value ? value.split(",").map(decodeURIComponent) : [];
}

function columnFromId(id: string): Column | null {
  const dot = id.indexOf(".");
  const kind = id.slice(0, dot);
  const key = id.slice(dot + 1);
  if (kind === "attr") return ATTRIBUTES.find((c) => c.key === key) ?? null;
  if (kind === "params" || kind === "metrics" || kind === "tags") return keyed(kind, key);
  return null;
}

// Keys of recent runs per experiment, kept across sort and filter changes (each remounts).
const sampledKeys = new Map<string, ColumnKeys>();

/** The pages of one query, fetched by offset as the view needs them. The count comes apart
 * (with a filter it reads every run), so first rows never wait for it; until it does, the
 * table reaches one page past what is loaded. */
class RunPages {
  readonly pages = new Map<number, RunTablePage>();
  private readonly pending = new Set<number>();
  private wanted: [number, number] = [0, 0];
  private loaded = 0; // rows up to the end of the furthest page loaded
  private more = true; // that page said more rows follow
  total: number | null = null;

  constructor(
    private readonly body: Record<string, unknown>,
    private readonly signal: AbortSignal,
    private readonly onPage: () => void,
    /** `rowsLost`: the rows could not be read (a bad filter); else only the count failed. */
    private readonly onError: (error: unknown, rowsLost: boolean) => void,
  ) {}

  row(index: number): { run: TableRun; page: RunTablePage; at: number } | undefined {
    const page = this.pages.get(Math.floor(index / PAGE));
    const at = index % PAGE;
    const run = page?.runs[at];
    return run && page ? { run, page, at } : undefined;
  }

  /** Rows the table should have now: the total, or what is loaded plus a page. */
  rows(): number {
    return this.total ?? this.loaded + (this.more ? PAGE : 0);
  }

  counting(): boolean {
    return this.total === null;
  }

  ensure(first: number, last: number): void {
    this.wanted = [first, last];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
      if (this.pending.size >= MAX_IN_FLIGHT) return;
      if (!this.pages.has(p) && !this.pending.has(p)) void this.load(p);
    }
  }

  async load(page: number): Promise<void> {
    this.pending.add(page);
    try {
      const result = await post<RunTablePage>(
        `${CAIRN}/runs/table`,
        { ...this.body, offset: page * PAGE, max_results: PAGE },
        this.signal,
      );
      this.pages.set(page, result);
      const end = result.offset + result.runs.length;
      if (end >= this.loaded) {
        this.loaded = end;
        this.more = result.next_page_token !== undefined;
      }
      if (this.total === null && !result.next_page_token && (result.runs.length || page === 0)) {
        this.total = end; // the last page: the count is known
      } else if (page === 0 && this.total === null) void this.count();
      this.onPage();
    } catch (error) {
      if (!isAbort(error)) this.onError(error, true);
      return;
    } finally {
      this.pending.delete(page);
    }
    this.ensure(...this.wanted);
  }

  private async count(): Promise<void> {
    const { experiment_ids, filter } = this.body;
    try {
      const found = await post<{ total: number }>(`${CAIRN}/runs/count`, { experiment_ids, filter }, this.signal);
      this.total = found.total;
      this.onPage();
    } catch (error) {
      if (!isAbort(error)) this.onError(error, false);
    }
  }
}

export function runsPage({ params, query, outlet, signal }: RouteContext): void {
  const experimentId = params.id ?? "";
  const filter = query.get("filter") ?? "";
  const order = query.get("order") ?? "";
  let chosenIds = parseColumnIds(query.get("cols"));
  const selected = new Set((query.get("sel") ?? "").split(",").filter(Boolean));

  const title = h("h1", null, "Runs");
  const filterInput = h("input", {
    type: "search",
    name: "filter",
    class: "filter-input",
    value: filter,
    placeholder: "metrics.rmse < 0.3 and params.model = 'ridge'",
    "aria-label": "Filter runs",
    spellcheck: "false",
    autocomplete: "off",
  });
  const filterError = h("div", { class: "filter-error", "aria-live": "polite" });
  const messages = h("div", { class: "messages" });
  const status = h("span", { class: "status", "aria-live": "polite" }, "Loading…");
  const compareButton = h("button", { type: "button", class: "primary", disabled: true }, "Compare");
  const columnsButton = h("button", { type: "button", "aria-expanded": "false" }, "Columns");
  const chooser = h("div", { class: "chooser", hidden: true });
  const gridHolder = h("div", { class: "grid-holder" });

  outlet.append(
    h("nav", { class: "crumbs" }, link("/", "Experiments"), " / ", h("span", { class: "crumb-name" }, `#${experimentId}`)),
    h("div", { class: "page-head" }, title),
    h(
      "form",
      {
        class: "filter-form",
        on: {
          submit: (event: SubmitEvent) => {
            event.preventDefault();
            navigate(hrefWith({ filter: filterInput.value.trim() || null, sel: null }));
          },
        },
      },
      filterInput,
      h("button", { type: "submit" }, "Apply"),
      filter
        ? h("button", { type: "button", on: { click: () => navigate(hrefWith({ filter: null })) } }, "Clear")
        : null,
    ),
    filterError,
    h("div", { class: "toolbar" }, status, h("span", { class: "spacer" }), columnsButton, compareButton),
    chooser,
    messages,
    gridHolder,
  );

  void get<{ experiment: Experiment }>(`${MLFLOW}/experiments/get`, { experiment_id: experimentId }, signal)
    .then(({ experiment }) => {
      title.textContent = experiment.name;
      document.title = `${experiment.name} · Cairn`;
      const crumb = outlet.querySelector(".crumb-name");
      if (crumb) crumb.textContent = experiment.name;
    })
    .catch((error: unknown) => {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    });

  const [orderKey, orderDir] = splitOrder(order);
  let columns: Column[] = [];
  let known: ColumnKeys = { params: [], metrics: [], tags: [], complete: false };
  let pages: RunPages | null = null;

  const nameColumn: GridColumn = {
    id: "attr.run_name",
    label: "Run",
    width: 220,
    sortable: true,
    sort: orderKey === "attributes.run_name" ? orderDir : null,
  };
  const selectColumn: GridColumn = { id: "select", label: "", width: 34 };
  const grid = new VirtualGrid({
    pinned: [selectColumn, nameColumn],
    columns: [],
    rowCount: 0,
    cell: renderCell,
    header: (column) => (column === selectColumn ? h("span", { class: "muted" }, "✓") : column.label),
    onSort: sortBy,
    onRange: (first, last) => pages?.ensure(first, last),
    rowClass: (row) => {
      const found = pages?.row(row);
      return found && selected.has(found.run.run_id) ? "selected" : "";
    },
    rowState: (row) => {
      const found = pages?.row(row);
      return found ? (selected.has(found.run.run_id) ? "selected" : "loaded") : "";
    },
  });
  gridHolder.append(grid.el);

  function splitOrder(text: string): [string, "ASC" | "DESC"] {
    const match = /^(.*?)\s+(ASC|DESC)$/i.exec(text.trim());
    if (!match) return [text.trim(), "ASC"];
    return [match[1] ?? "", (match[2] ?? "ASC").toUpperCase() as "ASC" | "DESC"];
  }

  function sortBy(column: GridColumn): void {
    const key = column === nameColumn ? "attributes.run_name" : (column as Column).orderKey;
    if (!key) return;
    const dir = key === orderKey && orderDir === "DESC" ? "ASC" : key === orderKey ? "DESC" : column.numeric ? "DESC" : "ASC";
    navigate(hrefWith({ order: `${key} ${dir}` }));
  }

  function renderCell(row: number, column: GridColumn): Node | string | undefined {
    const found = pages?.row(row);
    if (!found) return undefined;
    const { run, page, at } = found;
    if (column === selectColumn) {
      return h("input", {
        type: "checkbox",
        "aria-label": `Select ${run.run_name || run.run_id}`,
        checked: selected.has(run.run_id),
        on: { change: (event: Event) => toggle(run.run_id, (event.target as HTMLInputElement).checked) },
      });
    }
    if (column === nameColumn) return link(`/runs/${encodeURIComponent(run.run_id)}`, run.run_name || run.run_id);
    const c = column as Column;
    if (c.kind === "attr") {
      if (c.key === "start_time") return dateTime(run.start_time);
      if (c.key === "end_time") return dateTime(run.end_time);
      if (c.key === "duration") return run.end_time ? duration(run.end_time - run.start_time) : "";
      if (c.key === "status") return h("span", { class: `badge status-${run.status.toLowerCase()}` }, run.status);
      if (c.key === "user_id") return run.user_id;
      return "";
    }
    const value = page[c.kind][c.key]?.[at];
    if (value === null || value === undefined) return "";
    return c.kind === "metrics" ? (typeof value === "number" ? num(value) : String(value)) : String(value);
  }

  function toggle(runId: string, on: boolean): void {
    if (on) selected.add(runId);
    else selected.delete(runId);
    setQuery({ sel: [...selected].join(",") || null });
    updateCompare();
    grid.refresh();
  }

  function updateCompare(): void {
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = selected.size ? `Compare (${selected.size})` : "Compare";
  }
  compareButton.addEventListener("click", () => {
    navigate(`/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`);
  });
  updateCompare();

  function chosenColumns(): Column[] {
    if (chosenIds !== null) return chosenIds.map(columnFromId).filter((c): c is Column => c !== null);
    return [
      ...ATTRIBUTES.filter((c) => DEFAULT_ATTRIBUTES.includes(c.key)),
      ...known.metrics.slice(0, DEFAULT_KEYS).map((k) => keyed("metrics", k)),
      ...known.params.slice(0, DEFAULT_KEYS).map((k) => keyed("params", k)),
    ];
  }

  function start(): void {
    fill(messages);
    if (!gridHolder.contains(grid.el)) fill(gridHolder, grid.el);
    columns = chosenColumns().map((c) => ({ ...c, sort: c.orderKey === orderKey ? orderDir : null }));
    grid.setColumns(columns);
    const keysOf = (kind: Kind) => columns.filter((c) => c.kind === kind).map((c) => c.key);
    const body = {
      experiment_ids: [experimentId],
      filter: filter || undefined,
      order_by: order ? [order] : [],
      params: keysOf("params"),
      metrics: keysOf("metrics"),
      tags: keysOf("tags"),
    };
    pages = new RunPages(
      body,
      signal,
      () => {
        if (!pages) return;
        const rows = pages.rows();
        const counted = pages.counting() ? `${count(pages.rows() - PAGE)}+` : count(rows);
        status.textContent = `${counted} run${rows === 1 ? "" : "s"}${filter ? " match" : ""}`;
        if (rows === 0) fill(gridHolder, h("p", { class: "empty muted" }, filter ? "No runs match this filter." : "No runs in this experiment yet."));
        grid.setRowCount(rows);
        fill(filterError);
      },
      (error, rowsLost) => {
        const message = messageOf(error);
        if (!rowsLost) {
          fill(messages, errorBox(`Cannot count the runs: ${message}`));
          return;
        }
        status.textContent = "";
        if (filter && error instanceof ApiError && error.status === 400) {
          fill(filterError, errorBox(message));
          filterInput.classList.add("invalid");
        } else fill(messages, errorBox(message));
        grid.setRowCount(0);
      },
    );
    pages.ensure(0, 40);
  }

  // Column keys: those of the latest runs decide the default columns (quick on any experiment);
  // every key of the experiment (a scan of the key tables) is read when the chooser opens.
  const keyQuery = { experiment_ids: experimentId };
  const cached = sampledKeys.get(experimentId);
  if (cached) {
    known = cached;
    start();
  } else {
    get<ColumnKeys>(`${CAIRN}/runs/columns`, { ...keyQuery, sample: KEY_SAMPLE }, signal)
      .then((keys) => {
        sampledKeys.set(experimentId, keys);
        known = keys;
        start();
      })
      .catch((error: unknown) => {
        if (isAbort(error)) return;
        fill(messages, errorBox(messageOf(error)));
        start();
      });
  }

  columnsButton.addEventListener("click", () => {
    chooser.hidden = !chooser.hidden;
    columnsButton.setAttribute("aria-expanded", String(!chooser.hidden));
    if (chooser.hidden) return;
    renderChooser();
    if (known.complete) return;
    get<ColumnKeys>(`${CAIRN}/runs/columns`, keyQuery, signal)
      .then((keys) => {
        known = keys;
        if (!chooser.hidden) renderChooser();
      })
      .catch((error: unknown) => isAbort(error) || fill(messages, errorBox(messageOf(error))));
  });

  function renderChooser(): void {
    const search = h("input", { type: "search", placeholder: "Find a column", "aria-label": "Find a column" });
    const lists = h("div", { class: "chooser-lists" });
    const current = new Set(columns.map((c) => c.id));
    const groups: [string, Column[]][] = [
      ["Attributes", ATTRIBUTES],
      ["Metrics", known.metrics.map((k) => keyed("metrics", k))],
      ["Params", known.params.map((k) => keyed("params", k))],
      ["Tags", known.tags.map((k) => keyed("tags", k))],
    ];
    const draw = () => {
      const needle = search.value.trim().toLowerCase();
      fill(
        lists,
        groups.map(([name, all]) => {
          const matching = all.filter((c) => !needle || c.label.toLowerCase().includes(needle));
          const shown = matching.slice(0, 300);
          return h(
            "fieldset",
            null,
            h(
              "legend",
              null,
              `${name} (${all.length})`,
              h("button", { type: "button", class: "link", on: { click: () => setAll(matching, true) } }, "all"),
              h("button", { type: "button", class: "link", on: { click: () => setAll(matching, false) } }, "none"),
            ),
            shown.map((c) =>
              h(
                "label",
                { class: "check" },
                h("input", {
                  type: "checkbox",
                  checked: current.has(c.id),
                  dataset: { column: c.id },
                  on: { change: (event: Event) => setAll([c], (event.target as HTMLInputElement).checked) },
                }),
                c.label,
              ),
            ),
            matching.length > shown.length ? h("p", { class: "muted" }, `…and ${matching.length - shown.length} more: refine the search`) : null,
          );
        }),
      );
    };
    const setAll = (changed: Column[], on: boolean) => {
      for (const c of changed) {
        if (on) current.add(c.id);
        else current.delete(c.id);
      }
      const ordered = [...ATTRIBUTES, ...groups.slice(1).flatMap(([, all]) => all)].filter((c) => current.has(c.id));
      chosenIds = ordered.map((c) => c.id);
      setQuery({ cols: chosenIds.map(encodeURIComponent).join(",") || "-" });
      start();
      draw();
    };
    search.addEventListener("input", draw);
    fill(
      chooser,
      h("div", { class: "chooser-head" }, search, known.complete ? null : h("span", { class: "muted" }, "loading all keys…")),
      lists,
    );
    draw();
    search.focus();
  }
}
