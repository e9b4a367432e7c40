import { asArray, asObject, asString, type Json } from '../types.ts';

/** A Kubernetes label selector (matchLabels and matchExpressions); an empty selector selects everything. */
export function selects(selector: Json | undefined, labels: Record<string, string>): boolean {
  const value = asObject(selector);
  for (const [key, expected] of Object.entries(asObject(value['matchLabels']))) {
    if (labels[key] !== String(expected)) return false;
  }
  for (const expression of asArray(value['matchExpressions'])) {
    const { key, operator, values } = asObject(expression);
    const name = asString(key) ?? '';
    const list = asArray(values).map(String);
    const has = Object.hasOwn(labels, name);
    const ok =
      operator === 'In'
        ? has && list.includes(labels[name] ?? '')
        : operator === 'NotIn'
          ? !has || !list.includes(labels[name] ?? '')
          : operator === 'Exists'
            ? has
            : operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

export function isEmptySelector(selector: Json | undefined): boolean {
  const value = asObject(selector);
  return (
    asArray(value['matchExpressions']).length === 0 &&
    Object.keys(asObject(value['matchLabels'])).length === 0
  );
}
