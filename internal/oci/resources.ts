// CRI resources → OCI linux.resources, the oom_score_adj clamp and cgroup paths.
import { invalidArgument, short } from '../errors';
import type { LinuxContainerResources__Output } from '../../api/generated';
import type { OciResources } from './spec-types';
import { parseCpuList, resourceHostFacts, type ResourceHostFacts } from './resource-host';

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
  /** the host's hugepage sizes, CPUs, memory nodes and cgroup v2 controllers; unchecked when absent */
  host?: ResourceHostFacts;
}

// The ranges runc and the kernel take (kubelet sends values inside them): cpu.shares 2..262144
// (0 = unset), CFS period 1 ms..1 s, quota -1 (none) or at least 1 ms.
export const CPU_SHARES_MIN = 2;
export const CPU_SHARES_MAX = 262144;
export const CPU_PERIOD_MIN = 1000;
export const CPU_PERIOD_MAX = 1000000;
export const CPU_QUOTA_MIN = 1000;

/** A cpuset list naming only what `online` has; INVALID_ARGUMENT otherwise. */
function checkCpuset(value: string, field: string, online: number[] | undefined): void {
  const list = parseCpuList(value);
  if (!list) throw invalidArgument(`${field}: ${short(value)} is not a list such as "0-3,6"`);
  if (online) {
    const have = new Set(online);
    const missing = list.filter((c) => !have.has(c));
    if (missing.length)
      throw invalidArgument(
        `${field}: ${short(value)} names ${missing.slice(0, 5).join(',')}, which this host does not have online`,
      );
  }
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
  if (shares !== 0 && (shares < CPU_SHARES_MIN || shares > CPU_SHARES_MAX))
    throw invalidArgument(`cpu_shares ${shares} is outside ${CPU_SHARES_MIN}..${CPU_SHARES_MAX}`);
  if (period !== 0 && (period < CPU_PERIOD_MIN || period > CPU_PERIOD_MAX))
    throw invalidArgument(
      `cpu_period ${period} is outside ${CPU_PERIOD_MIN}..${CPU_PERIOD_MAX} (microseconds)`,
    );
  if (quota !== 0 && quota !== -1 && quota < CPU_QUOTA_MIN)
    throw invalidArgument(
      `cpu_quota ${quota} must be -1 (no limit) or at least ${CPU_QUOTA_MIN} (microseconds)`,
    );
  if (r.cpuset_cpus) checkCpuset(r.cpuset_cpus, 'cpuset_cpus', opts.host?.cpus);
  if (r.cpuset_mems) checkCpuset(r.cpuset_mems, 'cpuset_mems', opts.host?.mems);
  const oom = int64(r.oom_score_adj, 'oom_score_adj');
  if (oom < -1000 || oom > 1000) throw invalidArgument(`oom_score_adj ${oom} is outside -1000..1000`);
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
  if (swap < -1)
    throw invalidArgument(`memory_swap_limit_in_bytes ${swap} must be -1 (no limit) or positive`);
  if (swap > 0 && limit === 0)
    throw invalidArgument('memory_swap_limit_in_bytes is set without memory_limit_in_bytes');
  if (swap > 0 && swap < limit)
    throw invalidArgument(
      `memory_swap_limit_in_bytes ${swap} is below memory_limit_in_bytes ${limit} (it counts memory plus swap)`,
    );
  if (limit > 0) {
    out.memory = { limit };
    // swap = memory keeps a container with no swap request from using swap (what kubelet expects
    // without NodeSwap); a requested swap limit wins. Only where the cgroup accounts swap.
    if (opts.swapSupported) out.memory.swap = swap !== 0 ? swap : limit;
  }

  const hugepages = (r.hugepage_limits ?? []).map((h) => {
    if (!/^[0-9]+[KMGT]?B$/.test(h.page_size))
      throw invalidArgument(`hugepage_limits: invalid page_size ${short(h.page_size)}`);
    const sizes = opts.host?.hugepageSizes;
    if (sizes && !sizes.includes(h.page_size))
      throw invalidArgument(
        `hugepage_limits: page_size ${short(h.page_size)} is not a hugepage size of this host (${sizes.join(', ') || 'none'})`,
      );
    const hl = int64(h.limit, `hugepage_limits[${h.page_size}]`);
    if (hl < 0) throw invalidArgument(`hugepage_limits[${short(h.page_size)}]: limit ${hl} is negative`);
    return { pageSize: h.page_size, limit: hl };
  });
  if (opts.hugetlbSupported && hugepages.length) out.hugepageLimits = hugepages;
  if (r.unified && Object.keys(r.unified).length) {
    const ctrls = opts.host?.unifiedControllers;
    for (const k of Object.keys(r.unified)) {
      if (!/^[a-z_]+\.[a-z0-9_.]+$/.test(k) || k.includes('..'))
        throw invalidArgument(`unified: invalid key ${short(k)} (a cgroup v2 file such as memory.high)`);
      if (ctrls === null) throw invalidArgument(`unified: ${short(k)}: this host has no cgroup v2 hierarchy`);
      const ctrl = k.slice(0, k.indexOf('.'));
      if (ctrls && !ctrls.includes(ctrl))
        throw invalidArgument(
          `unified: ${short(k)}: controller ${ctrl} is not available (${ctrls.join(', ')})`,
        );
    }
    out.unified = { ...r.unified };
  }
  return out;
}

/** INVALID_ARGUMENT unless runc and this host's kernel would take `r` (checked before anything is created). */
export function checkResources(
  r: LinuxContainerResources__Output | null | undefined,
  host = resourceHostFacts(),
): void {
  buildResources(r, { swapSupported: true, hugetlbSupported: true, host });
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
