// Where a lifecycle RPC's time goes: the operation marks the end of each step (`mark('cni')`), and
// at the end the steps are logged at debug level and kept, per operation and step, in a bounded
// window of recent durations that `Status` verbose (`info.phases`) summarises and the benchmarks
// print. A mark costs one performance.now() and an array push.
import type { Logger } from '../log';

const WINDOW = 512;

export interface PhaseSummary {
  n: number;
  p50: number;
  p90: number;
  max: number;
}

export class PhaseStats {
  private readonly ops = new Map<string, Map<string, number[]>>();

  record(op: string, steps: [string, number][]): void {
    let m = this.ops.get(op);
    if (!m) this.ops.set(op, (m = new Map()));
    for (const [name, ms] of steps) {
      let xs = m.get(name);
      if (!xs) m.set(name, (xs = []));
      xs.push(ms);
      if (xs.length > WINDOW) xs.shift();
    }
  }

  /** op → step → summary (ms), steps in the order first seen; `total` last. */
  summary(): Record<string, Record<string, PhaseSummary>> {
    const out: Record<string, Record<string, PhaseSummary>> = {};
    for (const [op, m] of this.ops) {
      out[op] = {};
      for (const [name, xs] of m) out[op][name] = summarise(xs);
    }
    return out;
  }
}

function summarise(xs: number[]): PhaseSummary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, p50: round(at(0.5)), p90: round(at(0.9)), max: round(s[s.length - 1]) };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export class Phases {
  private readonly start = performance.now();
  private last = this.start;
  private readonly steps: [string, number][] = [];

  constructor(
    private readonly op: string,
    private readonly stats: PhaseStats | undefined,
    private readonly log: Logger,
  ) {}

  /** The step that just ended; a name marked twice adds up. */
  mark(name: string): void {
    const now = performance.now();
    this.add(name, now - this.last);
    this.last = now;
  }

  /**
   * Times fn as step `name` without moving the mark: for steps that run concurrently (their sum
   * can exceed the wall time, which the next mark() records).
   */
  async span<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(name, performance.now() - t0);
    }
  }

  /** Adds ms to step `name` (measured by the caller), without moving the mark. */
  add(name: string, ms: number): void {
    const known = this.steps.find((s) => s[0] === name);
    if (known) known[1] += ms;
    else this.steps.push([name, ms]);
  }

  /** Records the steps (and `total`) of a finished operation. */
  end(id: string): void {
    const total = performance.now() - this.start;
    const steps: [string, number][] = [...this.steps, ['total', total]];
    this.stats?.record(this.op, steps);
    this.log.debug('phases', {
      op: this.op,
      id,
      ms: Object.fromEntries(steps.map(([k, v]) => [k, round(v)])),
    });
  }
}
