// Pure formatting for the dashboard: numbers, sizes, durations and times as a person reads them.
// Every function answers '–' for a value the server did not send, so a missing field never shows "NaN".

const DASH = '–';

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** 1234567 → "1,234,567" (the reader's locale). */
export function count(n) {
  return isNum(n) ? Math.round(n).toLocaleString() : DASH;
}

/** Bytes in binary units: "512 B", "70.3 KiB", "1.2 GiB". */
export function bytes(n) {
  if (!isNum(n)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds: "8.8 ms", "340 ms", "2.4 s". */
export function ms(n) {
  if (!isNum(n)) return DASH;
  if (n < 10) return `${n.toFixed(1)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`;
}

/** Seconds as a span: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function span(seconds) {
  if (!isNum(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** A ratio 0..1 as "63%". */
export function percent(ratio) {
  if (!isNum(ratio)) return DASH;
  return ratio > 0 && ratio < 0.01 ? '<1%' : `${Math.round(ratio * 100)}%`;
}

/** Seconds with one decimal below a minute, else as a span: "4.2 s", "3 h 5 min". */
export function seconds(n) {
  if (!isNum(n)) return DASH;
  return n < 60 ? `${n.toFixed(1)} s` : span(n);
}

/** A time the server sent (ISO string, epoch seconds or epoch milliseconds) as epoch milliseconds, or NaN. */
export function epochMs(value) {
  if (isNum(value)) return value < 1e11 ? value * 1000 : value;
  if (typeof value === 'string') return Date.parse(value);
  return Number.NaN;
}

/** Local wall-clock time "14:03:27". */
export function clock(value) {
  const t = epochMs(value);
  if (!Number.isFinite(t)) return DASH;
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** How long ago, from a time the server sent: "12 s ago". */
export function ago(value, now = Date.now()) {
  const t = epochMs(value);
  return Number.isFinite(t) ? `${span((now - t) / 1000)} ago` : DASH;
}

/** The first 16 hex digits of a key: the form the proxy's log lines use too. */
export function shortKey(key) {
  return typeof key === 'string' && key ? key.slice(0, 16) : DASH;
}
