// crun (1.8) refuses a cgroup v1/v2 hybrid host whose cgroup2 mount still holds a controller
// ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"); this VM leaves
// hugetlb on cgroup2. runc uses the v1 hierarchies there and so can crun, once cgroup2 looks
// controller-free, as on a systemd hybrid host: crun then puts the limits in the v1 hierarchies and
// only tracks the container in cgroup2. The launcher runs crun in a private mount namespace
// (nothing propagates back to the host) with /dev/null bound over cgroup2's cgroup.controllers.
// It costs an unshare and a shell per crun call, only on such hosts.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export const HYBRID_UNIFIED = '/sys/fs/cgroup/unified';

/** True when /sys/fs/cgroup is a v1 tmpfs with a cgroup2 mount at unified/ that has controllers. */
export async function hybridWithV2Controllers(unified = HYBRID_UNIFIED): Promise<boolean> {
  try {
    return (await fsp.readFile(path.join(unified, 'cgroup.controllers'), 'utf8')).trim() !== '';
  } catch {
    return false; // no cgroup2 at unified/: pure v1, or pure v2 (/sys/fs/cgroup itself)
  }
}

/** Whether this runtime binary is crun (by name; crun is often installed as plain `crun`). */
export function isCrun(runtimePath: string): boolean {
  return /^crun([-.].*)?$/.test(path.basename(runtimePath));
}

export function launcherScript(runtimePath: string, unified = HYBRID_UNIFIED): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    '# Written by berthd: runs crun with the cgroup2 mount hidden (see internal/runtime/crun-hybrid.ts).',
    `exec unshare --mount /bin/sh -c ${q(`mount --bind /dev/null ${unified}/cgroup.controllers && exec "$0" "$@"`)} ${q(runtimePath)} "$@"`,
    '',
  ].join('\n');
}

/** Writes the launcher into `dir` and returns its path (rewritten at every start). */
export async function writeLauncher(dir: string, runtimePath: string): Promise<string> {
  const file = path.join(dir, 'crun-v1');
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, launcherScript(runtimePath), { mode: 0o700 });
  await fsp.rename(tmp, file);
  return file;
}
