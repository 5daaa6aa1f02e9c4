// Pure parsers for the kernel files the stats readers use: cgroup flat-keyed and single-value
// files (v1 and v2), /proc/self/mountinfo's cgroup mounts, /proc/<pid>/cgroup and /proc/<pid>/net/dev.
// Counters are bigint: nanosecond CPU counters and v1's "unlimited" memory limit pass 2^53.

/** A flat-keyed file (`key value` per line): memory.stat, cpu.stat, cpuacct.stat, memory.events. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const v = toBigInt(line.slice(sp + 1).trim());
    if (v !== undefined) out.set(line.slice(0, sp), v);
  }
  return out;
}

/** A single-value file (memory.usage_in_bytes, memory.max, pids.current): a number, or 'max' (v2 unlimited). */
export function parseSingle(text: string): bigint | 'max' | undefined {
  const t = text.trim();
  if (t === 'max') return 'max';
  return toBigInt(t);
}

function toBigInt(s: string): bigint | undefined {
  return /^\d+$/.test(s) ? BigInt(s) : undefined;
}

export interface CgroupMounts {
  /** v1 hierarchies: controller (cpu, cpuacct, memory, pids, ...) → mount point */
  v1: Map<string, string>;
  /** the cgroup2 mount point, if any (all of /sys/fs/cgroup on a pure v2 host, .../unified on a hybrid one) */
  v2?: string;
}

/** The cgroup mounts listed in /proc/self/mountinfo. The first mount of a hierarchy wins. */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const out: CgroupMounts = { v1: new Map() };
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const mountpoint = unescapeMountinfo(pre[4] ?? '');
    const fstype = post[0];
    if (!mountpoint) continue;
    if (fstype === 'cgroup2') {
      out.v2 ??= mountpoint;
    } else if (fstype === 'cgroup') {
      for (const opt of (post[2] ?? '').split(',')) {
        if (opt === 'rw' || opt === 'ro' || opt.includes('=') || opt === 'clone_children') continue;
        if (!out.v1.has(opt)) out.v1.set(opt, mountpoint);
      }
    }
  }
  return out;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface ProcCgroups {
  /** v1: controller → cgroup path */
  v1: Map<string, string>;
  /** the cgroup2 path ("0::/path") */
  v2?: string;
}

/** /proc/<pid>/cgroup: `hierarchy-id:controllers:path` lines. */
export function parseProcCgroup(text: string): ProcCgroups {
  const out: ProcCgroups = { v1: new Map() };
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const ctrls = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    if (line.slice(0, a) === '0' && ctrls === '') out.v2 = p;
    else for (const c of ctrls.split(',')) if (c) out.v1.set(c, p);
  }
  return out;
}

export interface NetDevEntry {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

/**
 * /proc/<pid>/net/dev: two header lines, then `name: rx(bytes packets errs drop fifo frame
 * compressed multicast) tx(bytes packets errs drop fifo colls carrier compressed)`.
 */
export function parseNetDev(text: string): NetDevEntry[] {
  const out: NetDevEntry[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (!name || f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const n = (i: number): bigint => BigInt(f[i]);
    out.push({
      name,
      rxBytes: n(0),
      rxPackets: n(1),
      rxErrors: n(2),
      rxDropped: n(3),
      txBytes: n(8),
      txPackets: n(9),
      txErrors: n(10),
      txDropped: n(11),
    });
  }
  return out;
}
