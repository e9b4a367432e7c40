/**
 * DOM building without HTML strings: every element is created and every text set through textContent,
 * so the page's Trusted Types policy (`trusted-types 'none'`) holds and no server value is ever parsed
 * as markup.
 */
type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | boolean | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, value);
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** A table with a header row; cells are text or nodes. */
export function table(headers: string[], rows: Child[][], label: string): HTMLTableElement {
  return h(
    'table',
    { 'aria-label': label },
    h('thead', {}, h('tr', {}, ...headers.map((header) => h('th', { scope: 'col' }, header)))),
    h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))),
  );
}

/** A definition list of label → value. */
export function facts(pairs: Array<[string, Child]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'facts' },
    ...pairs.flatMap(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]),
  );
}

export const when = (epochSeconds: number | null | undefined): string =>
  epochSeconds ? new Date(epochSeconds * 1000).toISOString().replace('T', ' ').slice(0, 19) : '—';

export const isoWhen = (iso: string | null | undefined): string =>
  iso ? iso.replace('T', ' ').slice(0, 19) : '—';

export const money = (amount: number, currency: string): string =>
  `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
