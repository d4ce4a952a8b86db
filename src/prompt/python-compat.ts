/**
 * The few Python string semantics the seed's hashing depends on, reproduced exactly so that our keys and block
 * hashes equal the ones in meta files the Python proxy wrote.
 */

/**
 * Python's `str.isspace()` (checked against CPython 3.11 over all code points). It differs from JS `trim()`:
 * Python also strips U+001C..U+001F and U+0085 (NEL) but keeps U+FEFF (BOM), which JS `trim()` removes.
 */
export function isPySpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Python's `s.strip()` with no argument. Looks at the ends only: a regex would scan every run of spaces. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPySpace(s.charCodeAt(start))) start++;
  while (end > start && isPySpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * Python's `str(value)` for the scalars a JSON body can hold (`None`, `True`, `False`, numbers). Objects and
 * arrays are not handled here: Python would print its `repr`, which we deliberately do not imitate.
 */
export function pyScalarStr(value: null | boolean | number): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  // Integers print alike. Floats can differ (JSON `1.0` is 1 here but 1.0 in Python, and Python switches to
  // exponent notation sooner); it only matters for a message whose whole content is such a number.
  return String(value);
}

/** `len(s)` in Python: the number of Unicode code points, not UTF-16 units. */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
