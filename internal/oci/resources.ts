// CRI resources → OCI linux.resources, the oom_score_adj clamp and cgroup paths.
import { invalidArgument, short } from '../errors';
import type { LinuxContainerResources__Output } from '../../api/generated';
import type { OciResources } from './spec-types';

/** Parses a CRI int64 (decimal string); empty → 0. Refuses values a JSON number cannot carry exactly. */
export function int64(value: string | number | undefined, field: string): number {
  if (value === undefined || value === '') return 0;
  const s = String(value).trim();
  if (!/^-?[0-9]+$/.test(s)) throw invalidArgument(`${field}: ${short(s)} is not an integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw invalidArgument(`${field}: ${short(s)} is out of range`);
  return n;
}

export interface ResourceOptions {
  /** the host's memory cgroup accounts swap (v1 memory.memsw.*, v2 memory.swap.max) */
  swapSupported: boolean;
  /** the hugetlb controller exists; without it hugepage limits are dropped (containerd's tolerate_missing_hugetlb_controller) */
  hugetlbSupported: boolean;
}

/** CPU, memory, hugepages and unified; devices are added by the spec builder. */
export function buildResources(
  r: LinuxContainerResources__Output | null | undefined,
  opts: ResourceOptions,
): OciResources {
  const out: OciResources = {};
  if (!r) return out;
  const shares = int64(r.cpu_shares, 'cpu_shares');
  const quota = int64(r.cpu_quota, 'cpu_quota');
  const period = int64(r.cpu_period, 'cpu_period');
  if (shares < 0) throw invalidArgument('cpu_shares must not be negative');
  if (period < 0) throw invalidArgument('cpu_period must not be negative');
  const cpu: NonNullable<OciResources['cpu']> = {};
  if (shares) cpu.shares = shares;
  if (quota) cpu.quota = quota;
  if (period) cpu.period = period;
  if (r.cpuset_cpus) cpu.cpus = r.cpuset_cpus;
  if (r.cpuset_mems) cpu.mems = r.cpuset_mems;
  if (Object.keys(cpu).length) out.cpu = cpu;

  const limit = int64(r.memory_limit_in_bytes, 'memory_limit_in_bytes');
  const swap = int64(r.memory_swap_limit_in_bytes, 'memory_swap_limit_in_bytes');
  if (limit < 0) throw invalidArgument('memory_limit_in_bytes must not be negative');
  if (limit > 0) {
    out.memory = { limit };
    // swap = memory keeps a container with no swap request from using swap (what kubelet expects
    // without NodeSwap); a requested swap limit wins. Only where the cgroup accounts swap.
    if (opts.swapSupported) out.memory.swap = swap !== 0 ? swap : limit;
  }

  if (opts.hugetlbSupported && r.hugepage_limits?.length) {
    out.hugepageLimits = r.hugepage_limits.map((h) => {
      if (!/^[0-9]+[KMGT]?B$/.test(h.page_size))
        throw invalidArgument(`hugepage_limits: invalid page_size ${short(h.page_size)}`);
      return { pageSize: h.page_size, limit: int64(h.limit, `hugepage_limits[${h.page_size}]`) };
    });
  }
  if (r.unified && Object.keys(r.unified).length) {
    for (const k of Object.keys(r.unified))
      if (!k || k.includes('/') || k.includes('..'))
        throw invalidArgument(`unified: invalid key ${short(k)}`);
    out.unified = { ...r.unified };
  }
  return out;
}

/** The requested oom_score_adj, raised to the daemon's own when `restrict` (see design: no CAP_SYS_RESOURCE). */
export function clampOomScoreAdj(requested: number, own: number, restrict: boolean): number {
  if (!Number.isInteger(requested) || requested < -1000 || requested > 1000)
    throw invalidArgument(`oom_score_adj ${short(requested)} is outside -1000..1000`);
  return restrict && requested < own ? own : requested;
}

/**
 * cgroupsPath for runc. cgroupfs: `<parent>/berth-<id>` (absolute; parent defaults to /berth);
 * systemd: `<slice>:berth:<id>` (slice defaults to system.slice).
 */
export function cgroupsPathFor(
  driver: 'cgroupfs' | 'systemd',
  parent: string | undefined,
  id: string,
): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw invalidArgument(`invalid container id ${short(id)}`);
  if (driver === 'systemd') {
    const slice = parent
      ? (parent
          .split('/')
          .filter((s) => s !== '')
          .pop() ?? '')
      : 'system.slice';
    if (!slice.endsWith('.slice'))
      throw invalidArgument(`cgroup_parent ${short(parent)} is not a systemd slice`);
    return `${slice}:berth:${id}`;
  }
  const p = parent || '/berth';
  if (p.split('/').includes('..'))
    throw invalidArgument(`cgroup_parent ${short(parent)} must not contain ".."`);
  const base = p.startsWith('/') ? p : `/${p}`;
  return `${base.replace(/\/+$/, '')}/berth-${id}`;
}
