// Mounting and unmounting with mount(2)/umount2(2) through the native helper (no mount(8)
// process per pod), and reading the mount table. Berth only unmounts what it mounted: callers pass
// paths under its own root/state dirs.
import { promises as fsp } from 'node:fs';
import { native } from './native';

export interface Mountable {
  type: string;
  source: string;
  options: string[];
}

/** mount(8)'s flag words that are mount(2) flags rather than filesystem data. */
const FLAG_OPTIONS = ['ro', 'nosuid', 'nodev', 'noexec'] as const;

/** Mounts `m` (a filesystem such as tmpfs; options as mount(8) spells them) on `target`. */
export async function mount(m: Mountable, target: string): Promise<void> {
  const n = native();
  const c = n.mountConstants;
  const bits: Record<(typeof FLAG_OPTIONS)[number], number> = {
    ro: c.MS_RDONLY,
    nosuid: c.MS_NOSUID,
    nodev: c.MS_NODEV,
    noexec: c.MS_NOEXEC,
  };
  let flags = 0;
  const data: string[] = [];
  for (const o of m.options) {
    if ((FLAG_OPTIONS as readonly string[]).includes(o)) flags |= bits[o as keyof typeof bits];
    else data.push(o);
  }
  try {
    n.mount(m.source, target, m.type, flags, data.length ? data.join(',') : null);
  } catch (err) {
    throw new Error(`mount ${m.type} on ${target} failed: ${(err as Error).message}`);
  }
}

/** Lazily unmounts `target`; success when it is not mounted. */
export async function unmount(target: string): Promise<void> {
  const n = native();
  while (await isMountPoint(target)) {
    try {
      n.umount2(target, n.mountConstants.MNT_DETACH);
    } catch (err) {
      if (await isMountPoint(target)) throw new Error(`umount ${target} failed: ${(err as Error).message}`);
    }
  }
}

/** Decodes the octal escapes (\040 for space...) /proc/self/mountinfo uses in paths. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points from /proc/self/mountinfo. */
export async function mountPoints(): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => unescapeMountPath(l.split(' ')[4]));
}

export async function isMountPoint(p: string): Promise<boolean> {
  return (await mountPoints()).includes(p);
}

/** Mount points at or below `dir`, deepest first (the order to unmount them). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  return (await mountPoints())
    .filter((m) => m === dir || m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}
