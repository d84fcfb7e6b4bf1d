// Page scaffolding shared by the run, comparison and degradation reports: one
// self-contained HTML file (inline CSS, inline SVG, inline data; no script, font, image
// or style is fetched from anywhere).
import { el, escapeXml, textEl } from './svg.js';

const CSS = `
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 0; color: #1a1a1a; background: #f6f7f9; }
header { background: #1f2d3d; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d3dd; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 18px 0; padding: 14px 18px; }
section h2 { font-size: 17px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #dde1e6; border-radius: 6px; padding: 8px 14px; min-width: 130px; background: #fbfcfd; }
.card .value { font-size: 20px; font-weight: bold; }
.card .name { font-size: 12px; color: #555; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.charts svg, figure svg { max-width: 100%; height: auto; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #555; margin-top: 4px; max-width: 760px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: right; }
th { background: #f0f2f5; }
td.text, th.text { text-align: left; }
td.json { text-align: left; font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre-wrap; }
.verdict { font-size: 15px; font-weight: bold; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.sample { border: 1px solid #dde1e6; border-radius: 4px; padding: 4px; text-align: center; font-size: 11px; width: 92px; background: #fbfcfd; }
.sample img { width: 84px; height: 84px; image-rendering: pixelated; display: block; margin: 0 auto 3px; }
.sample .true { color: #2e7d32; }
.sample .predicted { color: #c62828; }
.note { color: #555; font-size: 13px; }
.scroll { max-height: 420px; overflow-y: auto; }
`;

export interface PageSpec {
  title: string;
  subtitle: string;
  sections: readonly string[];
  /** Machine-readable copy of what the page shows, embedded as JSON. */
  data: unknown;
  /**
   * A script the page loads from its own server (the live dashboard's), allowed by the
   * page's policy together with connections back to that server; no other script runs.
   */
  script?: string;
}

/** JSON safe to place inside a <script> element ("</script>" cannot end it early). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))
    .replace(/</g, '\\u003c');
}

export function page(spec: PageSpec): string {
  return '<!DOCTYPE html>\n' + el('html', { lang: 'en' },
    el('head', {},
      el('meta', { charset: 'utf-8' }),
      el('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }),
      // No network access at all: the page's own policy forbids every fetch but inline
      // styles and data: images (a served page: also its script and its event stream,
      // from its own server only).
      el('meta', { 'http-equiv': 'Content-Security-Policy', content: "default-src 'none'; style-src 'unsafe-inline'; img-src data:" +
        (spec.script === undefined ? '' : "; script-src 'self'; connect-src 'self'") }),
      textEl('title', {}, spec.title),
      el('style', {}, CSS)),
    el('body', {},
      el('header', {}, textEl('h1', {}, spec.title), textEl('p', {}, spec.subtitle)),
      el('main', {}, ...spec.sections),
      `<script type="application/json" id="report-data">${scriptJson(spec.data)}</script>`,
      spec.script === undefined ? '' : el('script', { src: spec.script })));
}

export function section(id: string, title: string, ...content: string[]): string {
  return el('section', { id }, textEl('h2', {}, title), ...content);
}

export function card(metric: string, name: string, value: string): string {
  return el('div', { class: 'card', 'data-metric': metric }, el('div', { class: 'value' }, escapeXml(value)), el('div', { class: 'name' }, escapeXml(name)));
}

export interface Column<T> {
  header: string;
  /** Cell text for a row. */
  value: (row: T) => string;
  /** Left-aligned text column (numbers align right). */
  text?: boolean;
  /** A CSS class for the body cells instead (e.g. 'json'). */
  cellClass?: string;
  key?: string;
}

export function table<T>(id: string, columns: readonly Column<T>[], rows: readonly T[]): string {
  const head = el('tr', {}, ...columns.map((c) => textEl('th', { class: c.text === true || c.cellClass !== undefined ? 'text' : undefined }, c.header)));
  const body = rows.map((r) => el('tr', {}, ...columns.map((c) =>
    textEl('td', { class: c.cellClass ?? (c.text === true ? 'text' : undefined), 'data-key': c.key }, c.value(r)))));
  return el('table', { id }, el('thead', {}, head), el('tbody', {}, ...body));
}

export function figure(svg: string, caption?: string, id?: string): string {
  return el('figure', { id }, svg, caption === undefined ? '' : textEl('figcaption', {}, caption));
}

/** A fraction as a percentage with `digits` decimals; "n/a" when unknown. */
export function pct(v: number | undefined, digits = 2): string {
  return v !== undefined && Number.isFinite(v) ? `${(v * 100).toFixed(digits)}%` : 'n/a';
}

export function num(v: number | undefined, digits = 4): string {
  return v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'n/a';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${r} s` : `${r} s`;
}
