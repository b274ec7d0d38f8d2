// Tiny DOM helpers. Strings always become text nodes: nothing from the API is parsed as HTML.

export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (event: never) => void;
export type Props = {
  class?: string;
  style?: Partial<CSSStyleDeclaration>;
  on?: Record<string, Handler>;
  dataset?: Record<string, string>;
  [attribute: string]: unknown;
};

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = String(value);
      else if (key === "style") Object.assign(el.style, value);
      else if (key === "on") {
        for (const [name, fn] of Object.entries(value as Record<string, Handler>)) {
          el.addEventListener(name, fn as EventListener);
        }
      } else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
        (el as unknown as Record<string, unknown>)[key] = value;
      } else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace an element's content with the given children (as text or nodes). */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** An in-app link: the router intercepts clicks on `data-link` anchors. */
export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return h("a", { href, "data-link": true }, ...children);
}

/** A message box for API and input errors (the message is shown as text). */
export function errorBox(message: string): HTMLElement {
  return h("div", { class: "error", role: "alert" }, message);
}
