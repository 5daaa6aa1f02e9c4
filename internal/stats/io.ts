// Block I/O and pressure stall information (PSI) of a cgroup: pure parsers for cgroup v2 io.stat,
// v1 blkio.throttle.io_service_bytes / io_serviced, and the *.pressure files, plus the per-device
// sums a pod made of several cgroups needs.
//
// PSI is read only where the kernel gives it: a cgroup v2 hierarchy's cpu.pressure,
// memory.pressure and io.pressure (on a pure v2 host, or the unified hierarchy of a hybrid one, where
// every cgroup has them whatever controllers are enabled). A host without cgroup v2 has no PSI
// per cgroup and Berth reports none.
import * as fs from 'node:fs';

export interface IoDeviceSample {
  major: number;
  minor: number;
  readBytes: bigint;
  writeBytes: bigint;
  reads: bigint;
  writes: bigint;
}

export interface PsiLine {
  /** cumulative stall time in microseconds */
  total: bigint;
  avg10: number;
  avg60: number;
  avg300: number;
}

export interface Psi {
  some?: PsiLine;
  full?: PsiLine;
}

const device = (map: Map<string, IoDeviceSample>, key: string): IoDeviceSample | undefined => {
  const m = /^(\d+):(\d+)$/.exec(key);
  if (!m) return undefined;
  let d = map.get(key);
  if (!d) {
    d = { major: Number(m[1]), minor: Number(m[2]), readBytes: 0n, writeBytes: 0n, reads: 0n, writes: 0n };
    map.set(key, d);
  }
  return d;
};

/** cgroup v2 io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per device. */
export function parseIoStat(text: string): IoDeviceSample[] {
  const out = new Map<string, IoDeviceSample>();
  for (const line of text.split('\n')) {
    const [key, ...kvs] = line.trim().split(/\s+/);
    if (!key) continue;
    const d = device(out, key);
    if (!d) continue;
    for (const kv of kvs) {
      const [k, v] = kv.split('=');
      if (!/^\d+$/.test(v ?? '')) continue;
      const n = BigInt(v);
      if (k === 'rbytes') d.readBytes = n;
      else if (k === 'wbytes') d.writeBytes = n;
      else if (k === 'rios') d.reads = n;
      else if (k === 'wios') d.writes = n;
    }
  }
  return [...out.values()];
}

/**
 * cgroup v1 blkio.throttle.io_service_bytes(_recursive) and io_serviced(_recursive):
 * `MAJ:MIN Read|Write|Sync|Async|Discard|Total N` per device, then `Total N`.
 */
export function parseBlkio(bytesText: string, opsText: string | undefined): IoDeviceSample[] {
  const out = new Map<string, IoDeviceSample>();
  const each = (text: string, set: (d: IoDeviceSample, op: string, n: bigint) => void): void => {
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length !== 3 || !/^\d+$/.test(f[2])) continue;
      const d = device(out, f[0]);
      if (d) set(d, f[1], BigInt(f[2]));
    }
  };
  each(bytesText, (d, op, n) => {
    if (op === 'Read') d.readBytes = n;
    else if (op === 'Write') d.writeBytes = n;
  });
  if (opsText)
    each(opsText, (d, op, n) => {
      if (op === 'Read') d.reads = n;
      else if (op === 'Write') d.writes = n;
    });
  return [...out.values()];
}

/** A *.pressure file: `some avg10=A avg60=B avg300=C total=T` and (not for cpu on old kernels) `full ...`. */
export function parsePressure(text: string): Psi | undefined {
  const out: Psi = {};
  for (const line of text.split('\n')) {
    const [kind, ...kvs] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const v = new Map(kvs.map((kv) => kv.split('=') as [string, string]));
    const total = v.get('total');
    if (total === undefined || !/^\d+$/.test(total)) continue;
    out[kind] = {
      total: BigInt(total),
      avg10: Number(v.get('avg10') ?? 0),
      avg60: Number(v.get('avg60') ?? 0),
      avg300: Number(v.get('avg300') ?? 0),
    };
  }
  return out.some || out.full ? out : undefined;
}

/** Per-device sums of several cgroups' I/O. */
export function sumIo(lists: IoDeviceSample[][]): IoDeviceSample[] {
  const out = new Map<string, IoDeviceSample>();
  for (const list of lists)
    for (const s of list) {
      const d = device(out, `${s.major}:${s.minor}`)!;
      d.readBytes += s.readBytes;
      d.writeBytes += s.writeBytes;
      d.reads += s.reads;
      d.writes += s.writes;
    }
  return [...out.values()];
}

const deviceNames = new Map<string, string>();

/** /dev/<name> of a block device (cAdvisor's `device` label), or MAJ:MIN when sysfs does not say. */
export function deviceName(major: number, minor: number, sysRoot = '/sys'): string {
  const key = `${major}:${minor}`;
  let name = deviceNames.get(key);
  if (name === undefined) {
    try {
      const uevent = fs.readFileSync(`${sysRoot}/dev/block/${key}/uevent`, 'utf8');
      const m = /^DEVNAME=(.+)$/m.exec(uevent);
      name = m ? `/dev/${m[1]}` : key;
    } catch {
      name = key;
    }
    deviceNames.set(key, name);
  }
  return name;
}
