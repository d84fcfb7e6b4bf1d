// The live training dashboard (`resnet dashboard runs/`, `resnet train --dashboard`): the
// curves of report.html (one run: loss, accuracy, learning rate, throughput) or of
// compare.html (several runs overlaid), drawn by the same SVG chart code on the server
// and pushed to the page as server-sent events whenever a run writes metrics.jsonl or
// steps.jsonl (src/serve/run-watch.ts); the page swaps the charts in.
//
//   GET /          the page, with the charts as they are now
//   GET /events    text/event-stream: an event `charts` { version, html } per change
//   GET /charts    the charts' HTML as it is now
//   GET /health    200 while serving
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, resolve } from 'node:path';
import Fastify from 'fastify';
import { readRunData } from '../experiments/run-data.js';
import { compareCurves } from '../report/compare-report.js';
import { page, section } from '../report/html.js';
import type { RunData } from '../report/run-data.js';
import { runCurves } from '../report/run-report.js';
import { el, textEl } from '../report/svg.js';
import { Assets } from './assets.js';
import { RunWatcher } from './run-watch.js';

export interface DashboardOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** How often the run folders are polled, besides fs.watch (default 1000 ms). */
  pollMs?: number;
  /** Where problems reading a run are reported (default stderr). */
  log?: (line: string) => void;
}

export interface RunningDashboard {
  url: string;
  close: () => Promise<void>;
}

interface Charts {
  version: number;
  html: string;
  names: string[];
}

/** The charts of `runs`: one run as its report draws them, several overlaid as `resnet compare` does. */
export function dashboardCharts(runs: readonly RunData[]): string {
  if (runs.length === 0) return section('curves', 'Curves', textEl('p', { class: 'note' }, 'No run folder here has written anything yet.'));
  return runs.length === 1 ? runCurves(runs[0]!) : compareCurves(runs);
}

function dashboardPage(charts: Charts, paths: readonly string[]): string {
  return page({
    title: `Training dashboard: ${paths.join(', ')}`,
    subtitle: 'Live: the charts follow what the runs write to metrics.jsonl and steps.jsonl.',
    sections: [
      el('div', { id: 'live', 'data-version': String(charts.version) }, charts.html),
      textEl('p', { class: 'note', id: 'live-status' }, `${charts.names.length} run(s): ${charts.names.join(', ')}`),
    ],
    data: { runs: charts.names },
    script: 'dashboard.js',
  });
}

function event(charts: Charts): string {
  return `event: charts\ndata: ${JSON.stringify({ version: charts.version, html: charts.html, runs: charts.names })}\n\n`;
}

/** Serve the dashboard of the run folders `paths` names (run folders, or folders of them); resolves once listening. */
export async function startDashboard(paths: readonly string[], opts: DashboardOptions): Promise<RunningDashboard> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const clients = new Set<ServerResponse>();
  let charts: Charts = { version: 0, html: dashboardCharts([]), names: [] };
  const problems = new Map<string, string>();

  const render = (dirs: readonly string[]): void => {
    const runs: RunData[] = [];
    for (const dir of dirs) {
      try {
        runs.push(readRunData(dir));
        problems.delete(dir);
      } catch (e) {
        // A folder being created (config.json half written) is read again on its next change.
        const text = e instanceof Error ? e.message : String(e);
        if (problems.get(dir) !== text) log(`resnet dashboard: skipping ${dir} for now: ${text}`);
        problems.set(dir, text);
      }
    }
    charts = { version: charts.version + 1, html: dashboardCharts(runs), names: runs.map((r) => r.name) };
    const message = event(charts);
    for (const res of clients) res.write(message);
  };
  const watcher = new RunWatcher(paths, render, opts.pollMs ?? 1000);

  const assets = new Assets();
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache')
    .send(dashboardPage(charts, paths.map((p) => basename(resolve(p))))));
  app.get('/dashboard.js', async (_req, reply) => {
    const asset = assets.pageFile('dashboard.js')!;
    return reply.type(asset.type).send(asset.bytes);
  });
  app.get('/charts', async (_req, reply) => reply.type('text/html; charset=utf-8').send(charts.html));
  app.get('/health', async () => ({ status: 'ok', runs: charts.names }));
  app.get('/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`retry: 2000\n\n${event(charts)}`);
    clients.add(res);
    req.raw.on('close', () => clients.delete(res));
  });
  app.addHook('preClose', async () => {
    watcher.close();
    for (const res of clients) res.end();
    clients.clear();
  });

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    watcher.close();
    throw e;
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}`, close: () => app.close() };
}
