import { CardholdError } from '../shared/errors.ts';

/**
 * The placeholders a forwarded request may hold. Anything else between double braces is refused, so a
 * typo cannot send a literal `{{card.numbr}}` to a processor, and no placeholder can reach other data.
 */
export const placeholders = [
  'card.number',
  'card.exp_month',
  'card.exp_month_2',
  'card.exp_year',
  'card.exp_year_2',
  'card.holder_name',
  'card.cvv',
] as const;

export type Placeholder = (typeof placeholders)[number];

export type CardValues = Record<Placeholder, string>;

/** How substituted values are escaped: for a JSON string, a form value, XML text or attributes, or as they are. */
export type TemplateEncoding = 'json' | 'form' | 'xml' | 'raw';

const PLACEHOLDER = /\{\{\s*([a-z0-9_.]+)\s*\}\}/g;

/** The placeholders a template uses, checked against the known list. */
export function placeholdersIn(template: string, field: string): Set<Placeholder> {
  const used = new Set<Placeholder>();
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] as Placeholder;
    if (!(placeholders as readonly string[]).includes(name)) {
      throw new CardholdError('forward_template_invalid', {
        field,
        detail: `Unknown placeholder; the known ones are ${placeholders.map((p) => `{{${p}}}`).join(', ')}`,
      });
    }
    used.add(name);
  }
  return used;
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function encodingFor(contentType: string | undefined): TemplateEncoding {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  // A cardholder name such as `</name><amount>1</amount>` must stay text inside the element it fills.
  if (type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml')) return 'xml';
  return 'raw';
}

/** The template with each placeholder replaced, escaped for where it stands (inside a JSON string, a form). */
export function render(template: string, values: CardValues, encoding: TemplateEncoding): string {
  return template.replace(PLACEHOLDER, (_whole, name: string) => {
    const value = values[name as Placeholder];
    if (encoding === 'json') return JSON.stringify(value).slice(1, -1);
    if (encoding === 'form') return encodeURIComponent(value);
    if (encoding === 'xml') return value.replace(/[&<>"']/g, (c) => XML_ENTITIES[c] as string);
    return value;
  });
}
