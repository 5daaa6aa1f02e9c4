// Creating and removing what a VolumePlan describes on the node: directories, tmpfs mounts, the
// files of configMap/secret/downwardAPI volumes, hostPath type checks. Everything play creates for a
// pod lives under <podsDir>/<uid>/, so teardown unmounts what is mounted there and removes it.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { mount, mountsUnder, unmount } from '../util/mount';
import type { HostPathType, VolumePlan } from './volumes';

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  return fsp.stat(p).catch(() => undefined);
}

/** hostPath's type check (and the creation DirectoryOrCreate and FileOrCreate ask for). */
export async function checkHostPath(name: string, p: string, type: HostPathType): Promise<void> {
  const st = await statOrUndefined(p);
  const fail = (want: string): never => {
    throw new Error(
      `volume ${JSON.stringify(name)}: hostPath ${p} ${st ? 'is not' : 'does not exist; want'} ${want}`,
    );
  };
  switch (type) {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!st) await fsp.mkdir(p, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) fail('a directory');
      return;
    case 'FileOrCreate':
      if (!st) await fsp.writeFile(p, '', { mode: 0o644, flag: 'a' });
      else if (!st.isFile()) fail('a file');
      return;
    case 'Directory':
      if (!st?.isDirectory()) fail('a directory');
      return;
    case 'File':
      if (!st?.isFile()) fail('a file');
      return;
    case 'Socket':
      if (!st?.isSocket()) fail('a socket');
      return;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) fail('a character device');
      return;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) fail('a block device');
      return;
  }
}

/** Sets up every volume of a pod (idempotent: a second play of the same pod finds them in place). */
export async function setupVolumes(plans: VolumePlan[]): Promise<void> {
  for (const v of plans) {
    if (v.kind === 'image') continue; // nothing on disk: the runtime mounts the pulled image
    if (v.kind === 'hostPath') {
      await checkHostPath(v.name, v.hostPath, v.hostPathType ?? '');
      continue;
    }
    await fsp.mkdir(v.hostPath, { recursive: true, mode: 0o755 });
    if (v.tmpfs && !(await mountsUnder(v.hostPath)).includes(v.hostPath)) {
      const opts = ['nosuid', 'nodev', 'mode=0755'];
      if (v.tmpfs.sizeBytes > 0) opts.push(`size=${v.tmpfs.sizeBytes}`);
      await mount({ type: 'tmpfs', source: 'tmpfs', options: opts }, v.hostPath);
    }
    if (v.kind === 'emptyDir') await fsp.chmod(v.hostPath, 0o777);
    for (const f of v.files ?? []) {
      const p = path.join(v.hostPath, f.path);
      await fsp.mkdir(path.dirname(p), { recursive: true });
      await fsp.writeFile(p, f.content, { mode: f.mode });
      await fsp.chmod(p, f.mode);
    }
  }
}

/** Unmounts what is mounted under the pod's directory and removes it. */
export async function teardownPodDir(podDir: string): Promise<void> {
  for (const m of await mountsUnder(podDir)) await unmount(m);
  await fsp.rm(podDir, { recursive: true, force: true });
}
