// History-API routing: every view is a URL (path + query), so views can be shared and
// back/forward work. A page is mounted into the outlet and gets an AbortSignal that fires when
// the user navigates away, so late responses never draw into the next page.

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  outlet: HTMLElement;
  signal: AbortSignal;
}

export type Mount = (ctx: RouteContext) => void | (() => void);

interface Route {
  pattern: RegExp;
  names: string[];
  mount: Mount;
  nav: string;
}

const routes: Route[] = [];
let current: { controller: AbortController; cleanup?: (() => void) | void } | null = null;
let outlet: HTMLElement;
let notFound: Mount = () => undefined;

/** Register a path like `/experiments/:id`; `nav` names the top-bar entry to highlight. */
export function route(path: string, nav: string, mount: Mount): void {
  const names: string[] = [];
  const source = path.replace(/:([a-z]+)/g, (_match, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ pattern: new RegExp(`^${source}/?$`), names, mount, nav });
}

export function fallback(mount: Mount): void {
  notFound = mount;
}

export function start(root: HTMLElement): void {
  outlet = root;
  window.addEventListener("popstate", render);
  document.addEventListener("click", (event) => {
    const anchor = (event.target as Element | null)?.closest?.("a[data-link]");
    if (!(anchor instanceof HTMLAnchorElement)) return;
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(anchor.getAttribute("href") ?? "/");
  });
  render();
}

/** Go to an in-app URL: a new history entry unless `replace`. */
export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
  window.scrollTo(0, 0);
}

/** Change the current URL's query without re-rendering (state the page already shows). */
export function setQuery(updates: Record<string, string | null>, replace = true): void {
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(updates)) {
    if (value === null || value === "") url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  const next = url.pathname + url.search;
  if (replace) history.replaceState(null, "", next);
  else history.pushState(null, "", next);
}

/** The current URL with some query values changed: for links and `navigate`. */
export function hrefWith(updates: Record<string, string | null>): string {
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(updates)) {
    if (value === null || value === "") url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a stray '%': keep it as typed
  }
}

function render(): void {
  if (current) {
    current.controller.abort();
    current.cleanup?.();
  }
  const path = location.pathname;
  const controller = new AbortController();
  outlet.replaceChildren();
  let mount = notFound;
  let params: Record<string, string> = {};
  let nav = "";
  for (const candidate of routes) {
    const match = candidate.pattern.exec(path);
    if (match) {
      mount = candidate.mount;
      nav = candidate.nav;
      params = Object.fromEntries(candidate.names.map((name, i) => [name, decodePart(match[i + 1] ?? "")]));
      break;
    }
  }
  for (const item of document.querySelectorAll<HTMLElement>("[data-nav]")) {
    item.classList.toggle("active", item.dataset.nav === nav);
  }
  const query = new URLSearchParams(location.search);
  current = { controller };
  current.cleanup = mount({ params, query, outlet, signal: controller.signal });
}
