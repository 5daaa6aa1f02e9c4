// What the leak checks of the integration tests look at in a daemon's own dirs. The pin dirs under
// its state dir (netns/, podns/) are self-bind mounts made once and kept, as `ip netns` keeps
// /run/netns: they are not leaks, the pins inside them are.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountsUnder } from '../../internal/util/mount';

export const PIN_DIRS = ['netns', 'podns'] as const;

/** Mount points under the daemon's root and state dirs, but for the pin dirs themselves. */
export async function daemonMounts(d: { root: string; state: string }): Promise<string[]> {
  const pinDirs = PIN_DIRS.map((p) => path.join(d.state, p));
  return [...(await mountsUnder(d.state)), ...(await mountsUnder(d.root))].filter(
    (m) => !pinDirs.includes(m),
  );
}

/** The entries (pins, or files left for them) in one pin dir; none when it does not exist. */
export function pinsIn(state: string, dir: (typeof PIN_DIRS)[number]): string[] {
  const p = path.join(state, dir);
  return fs.existsSync(p) ? fs.readdirSync(p) : [];
}
