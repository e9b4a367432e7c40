/**
 * Text a request carries must be text the platform can keep: well-formed Unicode (no lone surrogate,
 * which JSON's `\ud800` escape can smuggle in and PostgreSQL refuses or mangles) and no NUL (which
 * PostgreSQL cannot store in text at all). Checked on every parsed body, query and path parameter before
 * the schemas run, so such input is a 400 naming the field, never a 500 from the database halfway
 * through a request (nor a replayed 500 under an idempotency key).
 */

import { nameOf } from './validation.ts';

/** The field (as problems name fields) of the first ill-formed string or key, or undefined. */
export function illFormedTextAt(root: unknown): string | undefined {
  // Iterative: a body nested thousands deep must not exhaust the stack.
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string };
    if (typeof value === 'string') {
      if (!isStorableText(value)) return path;
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        const childPath = path ? `${path}.${nameOf(key)}` : nameOf(key);
        if (!isStorableText(key)) return childPath;
        stack.push({ value: child, path: childPath });
      }
    }
  }
  return undefined;
}

function isStorableText(text: string): boolean {
  return text.isWellFormed() && !text.includes('\u0000');
}
