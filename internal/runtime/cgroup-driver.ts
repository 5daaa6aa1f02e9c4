// The cgroup driver check made at start. `cgroup_driver = "systemd"` makes runc (and conmon) ask
// systemd over D-Bus for every container's scope; without systemd as PID 1 that fails at the first
// container with an obscure D-Bus error, so berthd refuses the setting at start instead. "systemd
// is the init" is sd_booted()'s test (the directory /run/systemd/system exists; runc's
// IsRunningSystemd uses the same), plus PID 1's name so the message can say what runs instead.
import { promises as fsp } from 'node:fs';

export interface InitFacts {
  /** /proc/1/comm, trimmed ('' when unreadable) */
  pid1: string;
  /** /run/systemd/system exists */
  systemdRunDir: boolean;
}

/** Why the systemd driver cannot be used on this host; undefined when it can. */
export function systemdDriverRefusal(f: InitFacts): string | undefined {
  if (f.pid1 === 'systemd' && f.systemdRunDir) return undefined;
  const what = f.pid1 ? `PID 1 is "${f.pid1}"` : 'PID 1 is unknown';
  const dir = f.systemdRunDir ? '' : ', /run/systemd/system does not exist';
  return (
    `"systemd" needs systemd as PID 1, but ${what}${dir}; ` +
    'set runtime.cgroup_driver = "cgroupfs" (and kubelet\'s cgroupDriver: cgroupfs)'
  );
}

export async function readInitFacts(procRoot = '/proc', runDir = '/run/systemd/system'): Promise<InitFacts> {
  const pid1 = await fsp.readFile(`${procRoot}/1/comm`, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  const systemdRunDir = await fsp.stat(runDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return { pid1, systemdRunDir };
}

/**
 * The systemd slice name kubelet passes as cgroup_parent for a cgroupfs-style path when its
 * cgroupDriver is systemd (kubelet's cgroup name conversion): each part joined by "-", dashes inside
 * a part become "_", ".slice" appended; e.g. ["kubepods","besteffort","pod1-2"] →
 * "kubepods-besteffort-pod1_2.slice".
 */
export function kubeletSliceName(parts: string[]): string {
  if (parts.length === 0) return '-.slice';
  return `${parts.map((p) => p.replace(/-/g, '_')).join('-')}.slice`;
}

/** The cgroupfs path systemd gives a slice: each dash-prefix is a parent slice. */
export function expandSlice(slice: string): string {
  if (!slice.endsWith('.slice') || slice === '-.slice') return '/';
  const name = slice.slice(0, -'.slice'.length);
  const parts = name.split('-');
  let prefix = '';
  let out = '';
  for (const p of parts) {
    prefix = prefix ? `${prefix}-${p}` : p;
    out += `/${prefix}.slice`;
  }
  return out;
}
