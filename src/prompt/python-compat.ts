/**
 * The few Python string semantics the seed's hashing depends on, reproduced exactly so that our keys and block
 * hashes equal the ones in meta files the Python proxy wrote.
 */

// Python's str.isspace() set (checked against CPython 3.11 over all code points). It differs from JS trim():
// Python also strips U+001C..U+001F and U+0085 (NEL) but keeps U+FEFF (BOM), which JS trim() removes.
const PY_SPACE = '\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** Python's `s.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
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
