// usage_nano_cores: the CPU rate over the interval since an earlier sample of the same cgroup,
// kept in memory. Several callers (kubelet's summary, its metrics, crictl) may ask within
// milliseconds of each other; measuring over such a tiny window is noise, so each key keeps up to
// two samples at least `minWindowNs` apart and the rate is taken against the newest sample that
// is at least that old (else the oldest one). With no sample yet, a caller-given baseline is used
// (usage 0 at the container's start, when that is recent), else the rate is 0 as in containerd.

export interface CpuPoint {
  /** monotonic clock, ns */
  t: bigint;
  usageNs: bigint;
}

export class CpuRateTracker {
  private readonly points = new Map<string, CpuPoint[]>();

  constructor(private readonly minWindowNs = 1_000_000_000n) {}

  /** nanocores for `key` at `now`; records the sample. */
  rate(key: string, now: CpuPoint, baseline?: CpuPoint): bigint {
    const pts = this.points.get(key) ?? [];
    let ref: CpuPoint | undefined;
    for (let i = pts.length - 1; i >= 0; i--)
      if (now.t - pts[i].t >= this.minWindowNs) {
        ref = pts[i];
        break;
      }
    ref ??= pts[0] ?? baseline;
    let nanoCores = 0n;
    if (ref && now.t > ref.t && now.usageNs >= ref.usageNs)
      nanoCores = ((now.usageNs - ref.usageNs) * 1_000_000_000n) / (now.t - ref.t);
    if (ref && now.usageNs < ref.usageNs) {
      // the counter went back (an aggregate lost a member, a cgroup was recreated): start over
      this.points.set(key, [now]);
      return 0n;
    }
    const newest = pts[pts.length - 1];
    if (!newest || now.t - newest.t >= this.minWindowNs) {
      pts.push(now);
      if (pts.length > 2) pts.shift();
      this.points.set(key, pts);
    }
    return nanoCores;
  }

  /** Drops the samples of keys not in `live` (containers and pods that are gone). */
  retain(live: Set<string>): void {
    for (const k of this.points.keys()) if (!live.has(k)) this.points.delete(k);
  }

  get size(): number {
    return this.points.size;
  }
}
