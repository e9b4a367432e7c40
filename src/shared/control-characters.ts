/**
 * Whether text holds a C0 control character or DEL: never meaningful in free text a client sends (a
 * description, metadata, a URL), and NUL is refused by PostgreSQL, which would otherwise answer a 500.
 */
export function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
