/**
 * Small SVG charts for the benchmark report, written by hand: a line chart on log-log axes and a horizontal
 * bar chart on a log axis. A chart library (vega + vega-lite render SVG headless) would bring some forty
 * packages and an optional native canvas build for three plain charts; these need nothing and render the
 * same in a browser, on GitHub and in an SVG viewer.
 * @module
 */

/** One line of a chart: its name and a y value (or null: no measurement) per x. */
export interface Series {
  readonly name: string;
  readonly values: readonly (number | null)[];
}

/** A chart's texts. */
export interface ChartText {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
}

const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 80, right: 170, top: 40, bottom: 56 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short number: 1.2k, 3.4M, 0.5. */
export function formatNumber(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e9) return `${trim(x / 1e9)}G`;
  if (a >= 1e6) return `${trim(x / 1e6)}M`;
  if (a >= 1e3) return `${trim(x / 1e3)}k`;
  return trim(x);
}

function trim(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/** A log axis over [lo, hi] rounded out to powers of ten; maps a value to [0, 1]. */
function logAxis(values: readonly number[]): { lo: number; hi: number; at: (v: number) => number; ticks: number[] } {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  let lo = 10 ** Math.floor(Math.log10(pos.length > 0 ? Math.min(...pos) : 1));
  let hi = 10 ** Math.ceil(Math.log10(pos.length > 0 ? Math.max(...pos) : 10));
  if (hi <= lo) hi = lo * 10;
  lo = Math.max(lo, Number.MIN_VALUE);
  const l0 = Math.log10(lo);
  const span = Math.log10(hi) - l0;
  const ticks: number[] = [];
  for (let e = Math.round(l0); e <= Math.round(Math.log10(hi)); e++) ticks.push(10 ** e);
  return { lo, hi, at: (v) => (Math.log10(v) - l0) / span, ticks };
}

function frame(text: ChartText, body: string[]): string {
  const x0 = MARGIN.left;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${x0 + plotW / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(text.title)}</text>`,
    `<text x="${x0 + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">${esc(text.xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + (HEIGHT - MARGIN.top - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(text.yLabel)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/**
 * A line chart on log-log axes: one line per series over the x values (points without a value are skipped).
 */
export function lineChart(text: ChartText, xs: readonly number[], series: readonly Series[]): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const xAxis = logAxis(xs);
  const yAxis = logAxis(series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const px = (x: number) => MARGIN.left + (xs.length === 1 ? 0.5 : xAxis.at(x)) * plotW;
  const py = (y: number) => MARGIN.top + (1 - yAxis.at(y)) * plotH;
  const body: string[] = [];
  for (const t of yAxis.ticks) {
    const y = py(t).toFixed(1);
    body.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatNumber(t)}</text>`,
    );
  }
  for (const x of xs) {
    const X = px(x).toFixed(1);
    body.push(
      `<line x1="${X}" x2="${X}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`,
      `<text x="${X}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatNumber(x)}</text>`,
    );
  }
  body.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = xs
      .map((x, j) => [x, s.values[j]] as const)
      .filter((p): p is readonly [number, number] => p[1] !== null && p[1] !== undefined && p[1] > 0);
    if (points.length > 1) {
      const d = points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      body.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    }
    for (const [x, y] of points) {
      body.push(
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${colour}"><title>${esc(s.name)}: ${formatNumber(y)}</title></circle>`,
      );
    }
    const ly = MARGIN.top + 14 + i * 20;
    const lx = MARGIN.left + plotW + 14;
    body.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${lx + 24}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  return frame(text, body);
}

/** A horizontal bar chart on a log axis: one bar per label. */
export function barChart(text: ChartText, bars: readonly { label: string; value: number }[]): string {
  const left = 210;
  const plotW = WIDTH - left - 40;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const axis = logAxis(bars.map((b) => b.value));
  const rowH = plotH / Math.max(bars.length, 1);
  const body: string[] = [];
  for (const t of axis.ticks) {
    const x = (left + axis.at(t) * plotW).toFixed(1);
    body.push(
      `<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#ddd"/>`,
      `<text x="${x}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatNumber(t)}</text>`,
    );
  }
  bars.forEach((b, i) => {
    const y = MARGIN.top + i * rowH + rowH * 0.15;
    const w = b.value > 0 ? Math.max(1, axis.at(b.value) * plotW) : 0;
    body.push(
      `<rect x="${left}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${(rowH * 0.7).toFixed(1)}" fill="${COLOURS[i % COLOURS.length]}"><title>${esc(b.label)}: ${formatNumber(b.value)}</title></rect>`,
      `<text x="${left - 6}" y="${(y + rowH * 0.35).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${esc(b.label)}</text>`,
      `<text x="${(left + w + 4).toFixed(1)}" y="${(y + rowH * 0.35).toFixed(1)}" dominant-baseline="middle" font-size="11">${formatNumber(b.value)}</text>`,
    );
  });
  // The bar chart's title and axis sit over its own plot area, not the line chart's.
  return frame(text, body).replace(`x="${MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2}"`, `x="${WIDTH / 2}"`);
}
