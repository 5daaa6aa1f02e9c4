// Mounting and unmounting through util-linux's mount(8)/umount(8), and reading the mount table.
// Berth only unmounts what it mounted: callers pass paths under its own root/state dirs.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Mountable {
  type: string;
  source: string;
  options: string[];
}

/** Mounts `m` on `target`. `cwd` lets long overlay option lists use relative lowerdir paths. */
export async function mount(m: Mountable, target: string, cwd?: string): Promise<void> {
  const args = ['-t', m.type];
  if (m.options.length) args.push('-o', m.options.join(','));
  args.push(m.source, target);
  try {
    await run('mount', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`mount ${m.type} on ${target} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** Lazily unmounts `target`; success when it is not mounted. */
export async function unmount(target: string): Promise<void> {
  if (!(await isMountPoint(target))) return;
  try {
    await run('umount', ['-l', target]);
  } catch (err) {
    if (await isMountPoint(target)) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`umount ${target} failed: ${(e.stderr || e.message).trim()}`);
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
