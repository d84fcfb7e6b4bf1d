// A small XML reader for the SVG this project writes, so tests can query elements by
// tag and class instead of matching strings.
export interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

function unescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ENTITIES[e] ?? '');
}

export function parseXml(xml: string): XmlNode {
  const root: XmlNode = { tag: '#root', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  const token = /<\/([\w:-]+)\s*>|<([\w:-]+)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g;
  for (const m of xml.matchAll(token)) {
    const top = stack[stack.length - 1]!;
    if (m[1] !== undefined) {
      if (top.tag !== m[1]) throw new Error(`parseXml: </${m[1]}> closes <${top.tag}>`);
      stack.pop();
    } else if (m[2] !== undefined) {
      const attrs: Record<string, string> = {};
      for (const a of (m[3] ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = unescape(a[2]!);
      const node: XmlNode = { tag: m[2], attrs, children: [], text: '' };
      top.children.push(node);
      if (m[4] !== '/') stack.push(node);
    } else if (m[5] !== undefined) {
      top.text += unescape(m[5]);
    }
  }
  if (stack.length !== 1) throw new Error(`parseXml: <${stack[stack.length - 1]!.tag}> is never closed`);
  return root;
}

export function all(node: XmlNode, pred: (n: XmlNode) => boolean): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (n: XmlNode): void => {
    for (const c of n.children) {
      if (pred(c)) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

export function hasClass(n: XmlNode, cls: string): boolean {
  return (n.attrs.class ?? '').split(/\s+/).includes(cls);
}

export function byClass(node: XmlNode, cls: string): XmlNode[] {
  return all(node, (n) => hasClass(n, cls));
}

/** All text inside a node, children included. */
export function textOf(n: XmlNode): string {
  return n.text + n.children.map(textOf).join('');
}

/** Absolute M/L coordinates of an SVG path as [x, y] pairs, with the command letter. */
export function pathPoints(d: string): { cmd: string; x: number; y: number }[] {
  return [...d.matchAll(/([ML])(-?[\d.]+) (-?[\d.]+)/g)].map((m) => ({ cmd: m[1]!, x: Number(m[2]), y: Number(m[3]) }));
}
