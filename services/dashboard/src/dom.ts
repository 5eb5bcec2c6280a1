// A tiny element builder: no HTML strings, so nothing the API returns is ever parsed as
// markup, and no inline style attribute exists for the CSP to refuse.

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h(tag: string, attributes: Attributes = {}, ...children: (Child | Child[])[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function clear(element: Element, ...children: (Node | string)[]): void {
  element.replaceChildren(...children);
}

/** A message box for empty, loading and error states. */
export function notice(kind: "info" | "error" | "loading" | "empty", title: string, ...lines: Child[]): HTMLElement {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": `notice-${kind}` }, h("strong", {}, title), ...lines.map((l) => (l ? h("p", {}, l) : null)));
}

export function select(id: string, values: string[], current: string, onChange: (value: string) => void, labels: (v: string) => string = (v) => v): HTMLSelectElement {
  const element = h("select", { id, "data-testid": id }) as HTMLSelectElement;
  for (const value of values) {
    const option = h("option", { value }, labels(value)) as HTMLOptionElement;
    option.selected = value === current;
    element.append(option);
  }
  element.addEventListener("change", () => onChange(element.value));
  return element;
}

export function field(label: string, control: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), control);
}
