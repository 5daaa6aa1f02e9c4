// What the host lets a container's resources name: its hugepage sizes, online CPUs and memory
// nodes, and the cgroup v2 controllers `unified` keys may use (null on a cgroup v1-only host).
// Read once (sync, a few small sysfs files) and cached; buildResources checks requests against it.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ResourceHostFacts {
  /** hugepage sizes as CRI names them ("2MB", "1GB") */
  hugepageSizes: string[];
  /** online CPU numbers */
  cpus: number[];
  /** online memory nodes */
  mems: number[];
  /** cgroup v2 controllers (plus "cgroup" for its core files); null when there is no cgroup v2 */
  unifiedControllers: string[] | null;
}

/** "0-3,8,10-11" → [0,1,2,3,8,10,11]; undefined when the text is no such list. */
export function parseCpuList(text: string): number[] | undefined {
  const s = text.trim();
  if (s === '') return [];
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** "hugepages-2048kB" → "2MB". */
export function hugepageDirToSize(dir: string): string | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(dir);
  if (!m) return undefined;
  const kb = Number(m[1]);
  if (kb % (1024 * 1024) === 0) return `${kb / (1024 * 1024)}GB`;
  if (kb % 1024 === 0) return `${kb / 1024}MB`;
  return `${kb}KB`;
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

export function readResourceHostFacts(sys = '/sys', cgroupRoot = '/sys/fs/cgroup'): ResourceHostFacts {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync(path.join(sys, 'kernel/mm/hugepages'));
  } catch {
    // no hugepages on this kernel
  }
  const v2 =
    read(path.join(cgroupRoot, 'cgroup.controllers')) ??
    read(path.join(cgroupRoot, 'unified', 'cgroup.controllers'));
  return {
    hugepageSizes: dirs.map(hugepageDirToSize).filter((s): s is string => s !== undefined),
    cpus: parseCpuList(read(path.join(sys, 'devices/system/cpu/online')) ?? '') ?? [],
    mems: parseCpuList(read(path.join(sys, 'devices/system/node/online')) ?? '0') ?? [0],
    unifiedControllers: v2 === undefined ? null : ['cgroup', ...v2.trim().split(/\s+/).filter(Boolean)],
  };
}

let cached: ResourceHostFacts | undefined;

export function resourceHostFacts(): ResourceHostFacts {
  cached ??= readResourceHostFacts();
  return cached;
}
