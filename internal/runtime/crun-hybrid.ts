// crun (1.8) refuses a cgroup v1/v2 hybrid host whose cgroup2 mount still holds a controller
// ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"); this VM leaves
// hugetlb on cgroup2. runc uses the v1 hierarchies there and so can crun, once cgroup2 looks
// controller-free, as on a systemd hybrid host: crun then puts the limits in the v1 hierarchies and
// only tracks the container in cgroup2. The launcher runs crun in a private mount namespace
// (nothing propagates back to the host) with /dev/null bound over cgroup2's cgroup.controllers.
// The launcher is berth-crun-v1 (native/src/crun-launcher.c) where the build made it: it does that
// itself and execs crun (13-17 ms per `crun --version` here, against 12-13 ms for crun alone). The
// shell form it stands in for (a shell, unshare, a shell and mount before crun: 26-29 ms) is what
// berthd writes when it was not built.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { nativeProgramPath } from '../util/native';

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

/** Where the build puts berth-crun-v1 (scripts/build-native.sh): next to the native addon. */
export function defaultNativeLauncherPath(): string | undefined {
  return nativeProgramPath('berth-crun-v1');
}

/**
 * berth-crun-v1's settings file (it reads `<its own path>.conf`): the cgroup2 mount, then the
 * runtime. Undefined when a path cannot be written there (berth-crun-v1 execs the runtime by path,
 * without a PATH lookup): the script launcher serves then.
 */
export function nativeLauncherConf(runtimePath: string, unified = HYBRID_UNIFIED): string | undefined {
  const ok = (p: string): boolean => path.isAbsolute(p) && !p.includes('\n');
  return ok(runtimePath) && ok(unified) ? `${unified}\n${runtimePath}\n` : undefined;
}

/**
 * Writes the launcher into `dir` and returns its path (rewritten at every start): a copy of the
 * native launcher `native` with its settings beside it when that program exists, else the script.
 */
export async function writeLauncher(
  dir: string,
  runtimePath: string,
  native = defaultNativeLauncherPath(),
): Promise<string> {
  const file = path.join(dir, 'crun-v1');
  const tmp = `${file}.tmp`;
  const conf = nativeLauncherConf(runtimePath);
  const program = native && conf ? await fsp.readFile(native).catch(() => undefined) : undefined;
  if (program && conf) {
    // the settings first: a launcher in place never finds them missing or stale
    await fsp.writeFile(`${file}.conf.tmp`, conf, { mode: 0o600 });
    await fsp.rename(`${file}.conf.tmp`, `${file}.conf`);
    await fsp.writeFile(tmp, program, { mode: 0o700 });
  } else {
    await fsp.writeFile(tmp, launcherScript(runtimePath), { mode: 0o700 });
  }
  await fsp.rename(tmp, file);
  return file;
}
