// The "prefill tokens avoided" chart: the history's per-bucket token counts summed into at most BARS bars over a
// time window ending now, drawn as stacked SVG bars (reused below, prefilled above) sized to the container.

import { s } from './dom.js';
import * as f from './format.js';

const BARS = 60;
const HEIGHT = 170;
const PAD = { left: 52, right: 8, top: 10, bottom: 22 };

/** Sum the history's points into BARS bars of equal length covering `windowS` seconds up to `nowS`. */
export function binHistory(history, windowS, nowS) {
  const bucketS = history?.bucket_s > 0 ? history.bucket_s : 60;
  const barS = Math.max(bucketS, Math.ceil(windowS / BARS / bucketS) * bucketS);
  const end = (Math.floor(nowS / barS) + 1) * barS;
  const start = end - BARS * barS;
  const bars = Array.from({ length: BARS }, (_, i) => ({ t: start + i * barS, reused: 0, prefilled: 0, saved: 0 }));
  for (const p of history?.points ?? []) {
    const t = f.epochMs(p.t) / 1000;
    if (!(t >= start && t < end)) continue;
    const bar = bars[Math.floor((t - start) / barS)];
    bar.reused += Number(p.tokens_reused) || 0;
    bar.prefilled += Number(p.tokens_prefilled) || 0;
    bar.saved += Number(p.prefill_seconds_saved) || 0;
  }
  return { bars, barS, start, end };
}

/** A round number >= n for the y axis: 1, 2 or 5 times a power of ten. */
function niceCeil(n) {
  if (n <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n);
}

function compact(n) {
  return n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : String(n);
}

function hhmm(tS) {
  return new Date(tS * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
}

/** The chart's SVG for `binned` at `width` pixels. */
export function chartSvg(binned, width) {
  const { bars, barS } = binned;
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const max = niceCeil(Math.max(...bars.map((b) => b.reused + b.prefilled)));
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const slot = plotW / bars.length;
  const barW = Math.max(1, slot - Math.min(2, slot * 0.2));
  const reused = bars.reduce((sum, b) => sum + b.reused, 0);

  const grid = [0, max / 2, max].map((v) => [
    s('line', { class: 'grid', x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }),
    s('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, compact(v)),
  ]);
  const columns = bars.map((b, i) => {
    const x = PAD.left + i * slot;
    const tip = `${hhmm(b.t)}–${hhmm(b.t + barS)}: ${f.count(b.reused)} tokens reused, ${f.count(b.prefilled)} prefilled`;
    return s(
      'g',
      {},
      s('title', {}, tip),
      s('rect', { class: 'bar-reused', x, width: barW, y: y(b.reused), height: y(0) - y(b.reused) }),
      s('rect', {
        class: 'bar-prefilled',
        x,
        width: barW,
        y: y(b.reused + b.prefilled),
        height: y(b.reused) - y(b.reused + b.prefilled),
      }),
    );
  });
  const labels = [0, Math.floor(bars.length / 2), bars.length].map((i, n) =>
    s(
      'text',
      {
        class: 'axis',
        y: HEIGHT - 6,
        x: PAD.left + i * slot,
        'text-anchor': ['start', 'middle', 'end'][n],
      },
      i === bars.length ? 'now' : hhmm(bars[i].t),
    ),
  );

  return s(
    'svg',
    {
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': `Prefill tokens avoided per ${f.span(barS)}: ${f.count(reused)} in this window`,
    },
    grid,
    columns,
    labels,
  );
}
