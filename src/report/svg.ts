// A minimal SVG/HTML string builder: elements are strings, attributes are escaped once here.
export type AttrValue = string | number | undefined | null | false;
export type Attrs = Record<string, AttrValue>;

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/** Coordinates rounded to 0.01 px: enough for any screen, and short in the file. */
export function fmtCoord(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function renderAttrs(attrs: Attrs): string {
  let out = '';
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    const text = typeof value === 'number' ? fmtCoord(value) : value;
    out += ` ${name}="${escapeXml(text)}"`;
  }
  return out;
}

// SVG leaves may self-close; HTML elements may not (`<div/>` opens a div in HTML), and
// void HTML elements take no closing tag.
const SELF_CLOSING = new Set(['path', 'line', 'rect', 'circle', 'polyline', 'polygon', 'image', 'stop']);
const HTML_VOID = new Set(['meta', 'img', 'br', 'hr', 'link', 'input']);

/** `<tag attrs>children</tag>`; children are already-rendered markup. */
export function el(tag: string, attrs: Attrs = {}, ...children: string[]): string {
  const inner = children.join('');
  if (inner === '' && SELF_CLOSING.has(tag)) return `<${tag}${renderAttrs(attrs)}/>`;
  if (HTML_VOID.has(tag)) return `<${tag}${renderAttrs(attrs)}/>`;
  return `<${tag}${renderAttrs(attrs)}>${inner}</${tag}>`;
}

/** An element whose only child is text (escaped). */
export function textEl(tag: string, attrs: Attrs, text: string): string {
  return `<${tag}${renderAttrs(attrs)}>${escapeXml(text)}</${tag}>`;
}

/** A standalone SVG document with a white background (PNG renderers otherwise show it transparent). */
export function svgDocument(width: number, height: number, body: string, title?: string): string {
  return el(
    'svg',
    {
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${fmtCoord(width)} ${fmtCoord(height)}`,
      'font-family': 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
      role: 'img',
      'aria-label': title,
    },
    title === undefined ? '' : textEl('title', {}, title),
    el('rect', { width, height, fill: '#ffffff' }),
    body,
  );
}
