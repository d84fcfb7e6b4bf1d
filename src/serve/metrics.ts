// The server's Prometheus metrics (text exposition format, through prom-client): requests
// by route and status, request latency, batch sizes and run times, queue depth.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: 1 ms to 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** 1, 2, 4, ... up to and including maxBatch. */
export function batchBuckets(maxBatch: number): number[] {
  const buckets: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) buckets.push(b);
  buckets.push(maxBatch);
  return buckets;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly batchSize: Histogram;
  private readonly batchSeconds: Histogram;

  constructor(maxBatch: number, queueDepth: () => number) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'resnet_http_requests_total', help: 'HTTP requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'status'], registers,
    });
    this.latency = new Histogram({
      name: 'resnet_http_request_duration_seconds', help: 'Time from receiving a request to answering it, by route',
      labelNames: ['route'], buckets: LATENCY_BUCKETS, registers,
    });
    this.batchSize = new Histogram({
      name: 'resnet_batch_size', help: 'Images per batch run through the model', buckets: batchBuckets(maxBatch), registers,
    });
    this.batchSeconds = new Histogram({
      name: 'resnet_batch_duration_seconds', help: 'Time the model took for one batch', buckets: LATENCY_BUCKETS, registers,
    });
    new Gauge({
      name: 'resnet_queue_depth', help: 'Images waiting for a batch', registers,
      collect() {
        this.set(queueDepth());
      },
    });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  batch(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.batchSeconds.observe(seconds);
  }
}
