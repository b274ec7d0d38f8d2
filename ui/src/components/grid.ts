// A virtualized table: only the rows and columns in view exist in the DOM, so 100,000 rows
// by 500 columns scroll like 30 by 10. Rows sit in normal flow inside one absolutely placed
// block, which lets the pinned columns and the header use `position: sticky`.

import { h } from "../dom";

export interface GridColumn {
  id: string;
  label: string;
  title?: string;
  width: number;
  numeric?: boolean;
  /** Current sort direction of this column, if it is the sort key. */
  sort?: "ASC" | "DESC" | null;
  sortable?: boolean;
}

export interface GridOptions {
  pinned: GridColumn[];
  columns: GridColumn[];
  rowCount: number;
  rowHeight?: number;
  /** The content of a cell; undefined while its row is not loaded. */
  cell: (row: number, column: GridColumn) => Node | string | undefined;
  header?: (column: GridColumn) => Node | string;
  onSort?: (column: GridColumn) => void;
  /** Called with the row range in view (after each render), to load what is missing. */
  onRange?: (first: number, last: number) => void;
  rowClass?: (row: number) => string;
  /** A row's state (loaded, selected...): a row drawn with the same state is reused; "" means
   * not loaded yet, drawn as one placeholder instead of a cell per column. */
  rowState?: (row: number) => string;
}

const HEADER_HEIGHT = 34;
const OVERSCAN_ROWS = 4;
const OVERSCAN_PX = 200;

export class VirtualGrid {
  readonly el: HTMLDivElement;
  private readonly inner: HTMLDivElement;
  private readonly head: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private readonly rowHeight: number;
  private offsets: number[] = [];
  private pinnedWidth = 0;
  private totalWidth = 0;
  private frame = 0;
  private drawn = new Map<number, { state: string; el: HTMLElement }>();
  private headKey = "";

  constructor(private options: GridOptions) {
    this.rowHeight = options.rowHeight ?? 28;
    this.head = h("div", { class: "grid-head", role: "row" });
    this.body = h("div", { class: "grid-body" });
    this.inner = h("div", { class: "grid-inner" }, this.head, this.body);
    this.el = h("div", { class: "grid", role: "grid", tabindex: "0" }, this.inner);
    this.el.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.el);
    this.layout();
  }

  /** Change the number of rows (the total became known) and redraw. */
  setRowCount(count: number): void {
    if (count === this.options.rowCount) {
      this.schedule(); // rows that got their data redraw; the rest are kept
      return;
    }
    this.options.rowCount = count;
    this.layout();
  }

  setColumns(columns: GridColumn[]): void {
    this.options.columns = columns;
    this.layout();
  }

  /** Redraw what is in view (new data arrived). */
  refresh(): void {
    this.drawn.clear();
    this.schedule();
  }

  private layout(): void {
    const { pinned, columns, rowCount } = this.options;
    this.pinnedWidth = pinned.reduce((sum, c) => sum + c.width, 0);
    this.offsets = [];
    let x = 0;
    for (const column of columns) {
      this.offsets.push(x);
      x += column.width;
    }
    this.totalWidth = this.pinnedWidth + x;
    this.drawn.clear();
    this.headKey = "";
    this.inner.style.width = `${this.totalWidth}px`;
    this.inner.style.height = `${HEADER_HEIGHT + rowCount * this.rowHeight}px`;
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private visibleColumns(): [number, number] {
    const { columns } = this.options;
    const left = this.el.scrollLeft - OVERSCAN_PX;
    const right = this.el.scrollLeft + this.el.clientWidth - this.pinnedWidth + OVERSCAN_PX;
    let first = 0;
    while (first < columns.length - 1 && this.offsets[first]! + columns[first]!.width < left) first++;
    let last = first;
    while (last < columns.length - 1 && this.offsets[last + 1]! < right) last++;
    return [first, columns.length ? last : -1];
  }

  private render(): void {
    const { pinned, columns, rowCount, cell } = this.options;
    const [c0, c1] = this.visibleColumns();
    const shown = columns.slice(c0, c1 + 1);
    const spacer = c0 > 0 ? this.offsets[c0]! : 0;
    const height = this.el.clientHeight - HEADER_HEIGHT;
    const r0 = Math.max(0, Math.floor(this.el.scrollTop / this.rowHeight) - OVERSCAN_ROWS);
    const r1 = Math.min(rowCount - 1, Math.ceil((this.el.scrollTop + height) / this.rowHeight) + OVERSCAN_ROWS);

    // Vertical scrolling keeps the header and every row still in view: only new rows are built.
    const headKey = `${c0}:${c1}`;
    if (headKey !== this.headKey) {
      this.headKey = headKey;
      this.drawn.clear();
      const headCells: Node[] = pinned.map((c) => this.headerCell(c, true));
      headCells.push(h("div", { class: "grid-spacer", style: { width: `${spacer}px` } }));
      for (const c of shown) headCells.push(this.headerCell(c, false));
      this.head.replaceChildren(...headCells);
    }

    const rows: Node[] = [];
    const drawn = new Map<number, { state: string; el: HTMLElement }>();
    for (let r = r0; r <= r1; r++) {
      const state = this.options.rowState?.(r) ?? "";
      const kept = this.drawn.get(r);
      if (kept && state && kept.state === state) {
        drawn.set(r, kept);
        rows.push(kept.el);
        continue;
      }
      if (this.options.rowState && !state) {
        rows.push(this.placeholderRow(r));
        continue;
      }
      const cells: Node[] = [];
      let left = 0;
      for (const c of pinned) {
        cells.push(this.bodyCell(cell(r, c), c, { left: `${left}px` }, true));
        left += c.width;
      }
      cells.push(h("div", { class: "grid-spacer", style: { width: `${spacer}px` } }));
      for (const c of shown) cells.push(this.bodyCell(cell(r, c), c, {}, false));
      const extra = this.options.rowClass?.(r);
      const el = h(
        "div",
        {
          class: extra ? `grid-row ${extra}` : "grid-row",
          role: "row",
          "aria-rowindex": String(r + 1),
          style: { height: `${this.rowHeight}px`, width: `${this.totalWidth}px` },
        },
        cells,
      );
      drawn.set(r, { state, el });
      rows.push(el);
    }
    this.drawn = drawn;
    this.body.style.top = `${HEADER_HEIGHT + r0 * this.rowHeight}px`;
    this.body.replaceChildren(...rows);
    if (rowCount > 0) this.options.onRange?.(r0, r1);
  }

  private placeholderRow(row: number): HTMLElement {
    return h(
      "div",
      {
        class: "grid-row",
        role: "row",
        "aria-rowindex": String(row + 1),
        style: { height: `${this.rowHeight}px`, width: `${this.totalWidth}px` },
      },
      h("div", { class: "grid-cell pinned loading", style: { width: `${this.pinnedWidth}px`, left: "0px" } }, "…"),
    );
  }

  private headerCell(column: GridColumn, pinned: boolean): HTMLElement {
    const arrow = column.sort === "ASC" ? " ▲" : column.sort === "DESC" ? " ▼" : "";
    const content = this.options.header ? this.options.header(column) : column.label;
    const el = h(
      "div",
      {
        class: `grid-cell grid-th${pinned ? " pinned" : ""}${column.numeric ? " num" : ""}${column.sortable ? " sortable" : ""}`,
        role: "columnheader",
        title: column.title ?? column.label,
        "aria-sort": column.sort === "ASC" ? "ascending" : column.sort === "DESC" ? "descending" : undefined,
        dataset: { column: column.id },
        style: { width: `${column.width}px`, height: `${HEADER_HEIGHT}px` },
      },
      content,
      arrow,
    );
    if (pinned) el.style.left = `${this.pinnedLeft(column)}px`;
    if (column.sortable && this.options.onSort) {
      const onSort = this.options.onSort;
      el.addEventListener("click", (event) => {
        if ((event.target as Element).closest("input")) return;
        onSort(column);
      });
    }
    return el;
  }

  private pinnedLeft(column: GridColumn): number {
    let left = 0;
    for (const c of this.options.pinned) {
      if (c === column) break;
      left += c.width;
    }
    return left;
  }

  private bodyCell(
    content: Node | string | undefined,
    column: GridColumn,
    style: Partial<CSSStyleDeclaration>,
    pinned: boolean,
  ): HTMLElement {
    const loading = content === undefined;
    const title = typeof content === "string" && content.length > 12 ? content : undefined;
    return h(
      "div",
      {
        class: `grid-cell${pinned ? " pinned" : ""}${column.numeric ? " num" : ""}${loading ? " loading" : ""}`,
        role: "gridcell",
        title,
        style: { width: `${column.width}px`, ...style },
      },
      loading ? "…" : content,
    );
  }
}
