// The prom-client side of Berth's metrics (see metrics.ts): loaded only when `metrics_address`
// is set, so a daemon that serves no metrics neither loads prom-client nor records anything.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  CONTAINER_STATES,
  POD_STATES,
  codeOf,
  countStates,
  secondsSince,
  type MetricsSources,
} from './metrics';

const RPC_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PULL_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const CNI_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class BerthMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private defaultsOn = false;

  private readonly rpcRequests = new Counter({
    name: 'berth_rpc_requests_total',
    help: 'CRI requests answered, by RPC and gRPC status code',
    labelNames: ['rpc', 'code'] as const,
    registers: [this.registry],
  });
  private readonly rpcDuration = new Histogram({
    name: 'berth_rpc_duration_seconds',
    help: 'Time to answer a CRI request, by RPC',
    labelNames: ['rpc'] as const,
    buckets: RPC_BUCKETS,
    registers: [this.registry],
  });
  private readonly pulls = new Counter({
    name: 'berth_image_pulls_total',
    help: 'Image pulls that completed',
    registers: [this.registry],
  });
  private readonly pullFailures = new Counter({
    name: 'berth_image_pull_failures_total',
    help: 'Image pulls that failed, by reason (the gRPC status code answered)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly pullBytes = new Counter({
    name: 'berth_image_pull_bytes_total',
    help: 'Bytes downloaded from registries by image pulls (manifests, configs, layers)',
    registers: [this.registry],
  });
  private readonly pullDuration = new Histogram({
    name: 'berth_image_pull_duration_seconds',
    help: 'Duration of completed image pulls',
    buckets: PULL_BUCKETS,
    registers: [this.registry],
  });
  private readonly unpackBytesTotal = new Counter({
    name: 'berth_image_unpack_bytes_total',
    help: 'Uncompressed layer bytes unpacked into snapshots',
    registers: [this.registry],
  });
  private readonly cniDuration = new Histogram({
    name: 'berth_cni_plugin_duration_seconds',
    help: 'Time of one CNI plugin invocation, by operation (ADD, DEL, CHECK) and plugin type',
    labelNames: ['op', 'plugin'] as const,
    buckets: CNI_BUCKETS,
    registers: [this.registry],
  });
  private readonly cniFailures = new Counter({
    name: 'berth_cni_plugin_failures_total',
    help: 'CNI plugin invocations that failed, by operation and plugin type',
    labelNames: ['op', 'plugin'] as const,
    registers: [this.registry],
  });
  private readonly cniOpDuration = new Histogram({
    name: 'berth_cni_operation_duration_seconds',
    help: "A pod network's whole CNI ADD or DEL (every plugin of the conflist), by operation",
    labelNames: ['op'] as const,
    buckets: CNI_BUCKETS,
    registers: [this.registry],
  });
  private readonly cniOpFailures = new Counter({
    name: 'berth_cni_operation_failures_total',
    help: "A pod network's CNI ADD or DEL that failed, by operation",
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  private readonly execSyncs = new Counter({
    name: 'berth_exec_sync_total',
    help: 'ExecSync commands run (exec probes), whatever their outcome',
    registers: [this.registry],
  });
  private readonly execSyncTimeouts = new Counter({
    name: 'berth_exec_sync_timeouts_total',
    help: 'ExecSync commands killed at their timeout (a probe timeout for kubelet)',
    registers: [this.registry],
  });

  constructor() {
    this.gauge('berth_pods', 'Pod sandboxes by state', ['state'], (g, src) => {
      for (const [s, n] of countStates(src.podStates(), POD_STATES)) g.set({ state: s }, n);
    });
    this.gauge('berth_containers', 'Containers by state', ['state'], (g, src) => {
      for (const [s, n] of countStates(src.containerStates(), CONTAINER_STATES)) g.set({ state: s }, n);
    });
    this.gauge('berth_conmon_processes', 'conmon monitor processes alive', [], async (g, src) => {
      g.set(await src.conmonProcesses());
    });
    this.gauge(
      'berth_event_loop_delay_seconds',
      "Event-loop delay beyond the 10 ms sampling interval over the last 10 s window, by quantile ('1' is the maximum)",
      ['quantile'],
      (g, src) => {
        const d = src.loop().delay_ms;
        g.set({ quantile: '0.5' }, d.p50 / 1000);
        g.set({ quantile: '0.9' }, d.p90 / 1000);
        g.set({ quantile: '0.99' }, d.p99 / 1000);
        g.set({ quantile: '1' }, d.max / 1000);
      },
    );
    this.gauge(
      'berth_event_loop_utilization_ratio',
      'Share of the last 10 s window the event loop was busy (0..1)',
      [],
      (g, src) => g.set(src.loop().utilization),
    );
  }

  /** A gauge filled from the sources at each scrape (left empty until sources are set). */
  private gauge(
    name: string,
    help: string,
    labelNames: string[],
    fill: (g: Gauge, src: MetricsSources) => void | Promise<void>,
  ): void {
    const sources = (): MetricsSources | undefined => this.sources;
    const g: Gauge = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect: () => {
        const src = sources();
        return src ? fill(g, src) : undefined;
      },
    });
  }

  /** Process figures (RSS, heap, open fds, CPU, GC) from prom-client's default collectors. */
  enableProcessMetrics(): void {
    if (this.defaultsOn) return;
    this.defaultsOn = true;
    collectDefaultMetrics({ register: this.registry });
  }

  setSources(s: MetricsSources): void {
    this.sources = s;
  }

  rpc(name: string, code: string, seconds: number): void {
    this.rpcRequests.inc({ rpc: name, code });
    this.rpcDuration.observe({ rpc: name }, seconds);
  }

  pullDone(bytes: number, seconds: number): void {
    this.pulls.inc();
    this.pullBytes.inc(bytes);
    this.pullDuration.observe(seconds);
  }

  /** A failed pull: `bytes` were downloaded before it failed. */
  pullFailed(err: unknown, bytes: number): void {
    this.pullFailures.inc({ reason: codeOf(err) });
    if (bytes > 0) this.pullBytes.inc(bytes);
  }

  unpacked(bytes: number): void {
    if (bytes > 0) this.unpackBytesTotal.inc(bytes);
  }

  cniPlugin(op: string, plugin: string, seconds: number, ok: boolean): void {
    this.cniDuration.observe({ op, plugin }, seconds);
    if (!ok) this.cniFailures.inc({ op, plugin });
  }

  /** Times a pod's whole CNI ADD/DEL (started at `started`, a hrtime reading) and passes its result on. */
  async cniOperation<T>(op: 'ADD' | 'DEL', started: bigint, p: Promise<T>): Promise<T> {
    try {
      const r = await p;
      this.cniOpDuration.observe({ op }, secondsSince(started));
      return r;
    } catch (err) {
      this.cniOpDuration.observe({ op }, secondsSince(started));
      this.cniOpFailures.inc({ op });
      throw err;
    }
  }

  execSync(timedOut: boolean): void {
    this.execSyncs.inc();
    if (timedOut) this.execSyncTimeouts.inc();
  }

  /** The Prometheus text exposition of everything. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
