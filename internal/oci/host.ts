// Reading the host facts the pure spec builders take as parameters. Call these once at start
// (devices, capabilities, oom_score_adj, cgroup features, AppArmor) or per request (mount sources,
// device stats) and pass the results in.
import { promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument, short } from '../errors';
import type { Device__Output, Mount__Output } from '../../api/generated';
import { capabilitiesFromMask } from './capabilities';
import type { MountSource } from './mounts';
import type { HostDevice } from './spec';
import type { OciDevice } from './spec-types';

const S_IFMT = 0o170000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;

function deviceOf(st: BigIntStats): HostDevice | undefined {
  const fmt = st.mode & S_IFMT;
  const type = fmt === S_IFCHR ? 'c' : fmt === S_IFBLK ? 'b' : fmt === S_IFIFO ? 'p' : undefined;
  if (!type) return undefined;
  // glibc's gnu_dev_major/minor on a 64-bit dev_t
  const rdev = st.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return {
    type,
    major,
    minor,
    fileMode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** stat(2) of a device path (symlinks followed); null when missing; invalidArgument when not a device. */
export async function statDevice(p: string): Promise<HostDevice | null> {
  let st: BigIntStats;
  try {
    st = await fsp.stat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const d = deviceOf(st);
  if (!d) throw invalidArgument(`device ${short(p)} is not a device node`);
  return d;
}

/** Stats of every CRI device's host_path, as ContainerSpecInput.devices wants them. */
export async function statRequestedDevices(
  devices: Device__Output[],
): Promise<Record<string, HostDevice | null>> {
  const out: Record<string, HostDevice | null> = {};
  for (const d of devices)
    if (d.host_path && !(d.host_path in out)) out[d.host_path] = await statDevice(d.host_path);
  return out;
}

const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** The host's device nodes under /dev (as runc lists them for privileged containers). */
export async function listHostDevices(root = '/dev'): Promise<OciDevice[]> {
  const out: OciDevice[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(p);
        continue;
      }
      if (e.name === 'console' || !(e.isCharacterDevice() || e.isBlockDevice() || e.isFIFO())) continue;
      try {
        const d = deviceOf(await fsp.lstat(p, { bigint: true }));
        if (d) out.push({ path: p, ...d });
      } catch {
        // vanished meanwhile
      }
    }
  };
  await walk(root);
  return out;
}

/** Effective capabilities of a process (default: ourselves). */
export async function readEffectiveCapabilities(pid: number | 'self' = 'self'): Promise<string[]> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status);
  if (!m) throw new Error(`no CapEff in /proc/${pid}/status`);
  return capabilitiesFromMask(m[1]);
}

export async function readOwnOomScoreAdj(): Promise<number> {
  return Number((await fsp.readFile('/proc/self/oom_score_adj', 'utf8')).trim());
}

export async function appArmorAvailable(): Promise<boolean> {
  try {
    return (await fsp.readFile('/sys/module/apparmor/parameters/enabled', 'utf8')).trim() === 'Y';
  } catch {
    return false;
  }
}

const exists = (p: string): Promise<boolean> =>
  fsp.access(p).then(
    () => true,
    () => false,
  );

/** Swap accounting and hugetlb controller of the host's cgroups (v1, v2 or hybrid). */
export async function detectCgroupFeatures(
  root = '/sys/fs/cgroup',
): Promise<{ swap: boolean; hugetlb: boolean }> {
  const v2 = await fsp.readFile(path.join(root, 'cgroup.controllers'), 'utf8').catch(() => undefined);
  if (v2 !== undefined) {
    const ctrls = v2.trim().split(/\s+/);
    return { swap: ctrls.includes('memory'), hugetlb: ctrls.includes('hugetlb') };
  }
  return {
    swap: await exists(path.join(root, 'memory', 'memory.memsw.limit_in_bytes')),
    hugetlb: await exists(path.join(root, 'hugetlb')),
  };
}

interface MountInfo {
  mountPoint: string;
  propagation: 'shared' | 'slave' | 'private';
}

function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    const sep = f.indexOf('-', 6);
    const optional = f.slice(6, sep < 0 ? undefined : sep);
    const mountPoint = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const propagation = optional.some((o) => o.startsWith('shared:'))
      ? 'shared'
      : optional.some((o) => o.startsWith('master:'))
        ? 'slave'
        : 'private';
    out.push({ mountPoint, propagation });
  }
  return out;
}

/** realpath and mount propagation of each CRI mount's host_path; null for a missing path. */
export async function resolveMountSources(
  mounts: Mount__Output[],
): Promise<Record<string, MountSource | null>> {
  const out: Record<string, MountSource | null> = {};
  let infos: MountInfo[] | undefined;
  for (const m of mounts) {
    if (!m.host_path || m.host_path in out) continue;
    let real: string;
    try {
      real = await fsp.realpath(m.host_path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        out[m.host_path] = null;
        continue;
      }
      throw err;
    }
    const src: MountSource = { realPath: real };
    if (m.propagation && m.propagation !== 'PROPAGATION_PRIVATE') {
      infos ??= parseMountInfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
      // the last-mounted entry with the longest matching mount point holds the path
      let best: MountInfo | undefined;
      for (const i of infos) {
        const under = i.mountPoint === '/' || real === i.mountPoint || real.startsWith(`${i.mountPoint}/`);
        if (under && (!best || i.mountPoint.length >= best.mountPoint.length)) best = i;
      }
      if (best) src.propagation = best.propagation;
    }
    out[m.host_path] = src;
  }
  return out;
}
