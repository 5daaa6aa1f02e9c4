// Berth's Prometheus metrics. The other parts report through the narrow methods of the `metrics`
// singleton (rpc, pull, unpack, CNI, exec-sync), and the daemon hands it read-only sources (pods,
// containers, conmon processes, event-loop health) that are read at scrape time. Every metric is
// listed in the README ("Metrics"). Until the daemon enables it (`metrics_address` set) every call
// is a no-op and prom-client (registry.ts, the one module that knows it) is not even loaded: it and
// what it pulls in cost the daemon several MB of RSS.
import { BerthError, Status } from '../errors';
import type { BerthMetrics } from './registry';

export type { BerthMetrics } from './registry';

/** What the scrape-time gauges read; set once by the daemon. */
export interface MetricsSources {
  /** state of every pod sandbox (creating, ready, notready) */
  podStates(): string[];
  /** state of every container (creating, created, running, exited) */
  containerStates(): string[];
  /** conmon monitors alive now */
  conmonProcesses(): Promise<number>;
  /** the last completed event-loop window (LoopHealth.report()) */
  loop(): { delay_ms: { p50: number; p90: number; p99: number; max: number }; utilization: number };
}

export const POD_STATES = ['creating', 'ready', 'notready'];
export const CONTAINER_STATES = ['creating', 'created', 'running', 'exited'];

/** The gRPC code name of a thrown value as the server answers it (plain errors are INTERNAL). */
export function codeOf(err: unknown): string {
  const code = err instanceof BerthError ? err.code : Status.INTERNAL;
  return Status[code] ?? String(code);
}

/** Counts of each state, with every known state present (0 when none). */
export function countStates(states: string[], known: string[]): Map<string, number> {
  const m = new Map<string, number>(known.map((s) => [s, 0]));
  for (const s of states) m.set(s, (m.get(s) ?? 0) + 1);
  return m;
}

/** Seconds since a process.hrtime.bigint() reading. */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The facade the parts record through: no-ops until enable() loads the registry. */
export class Metrics {
  private impl: BerthMetrics | undefined;
  private sources: MetricsSources | undefined;

  /** Loads prom-client and starts recording; returns the registry the endpoint serves. */
  enable(): BerthMetrics {
    if (!this.impl) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { BerthMetrics: Impl } = require('./registry') as typeof import('./registry');
      this.impl = new Impl();
      if (this.sources) this.impl.setSources(this.sources);
    }
    return this.impl;
  }

  setSources(s: MetricsSources): void {
    this.sources = s;
    this.impl?.setSources(s);
  }

  rpc(name: string, code: string, seconds: number): void {
    this.impl?.rpc(name, code, seconds);
  }

  pullDone(bytes: number, seconds: number): void {
    this.impl?.pullDone(bytes, seconds);
  }

  pullFailed(err: unknown, bytes: number): void {
    this.impl?.pullFailed(err, bytes);
  }

  unpacked(bytes: number): void {
    this.impl?.unpacked(bytes);
  }

  cniPlugin(op: string, plugin: string, seconds: number, ok: boolean): void {
    this.impl?.cniPlugin(op, plugin, seconds, ok);
  }

  cniOperation<T>(op: 'ADD' | 'DEL', started: bigint, p: Promise<T>): Promise<T> {
    return this.impl ? this.impl.cniOperation(op, started, p) : p;
  }

  execSync(timedOut: boolean): void {
    this.impl?.execSync(timedOut);
  }
}

/** The daemon's metrics; parts record into it, the metrics endpoint serves its registry. */
export const metrics = new Metrics();
