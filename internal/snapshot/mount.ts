// Mounting a snapshot's MountSpec with mount(2) directly (no mount(8) process per container).
import type { MountSpec } from './types';
import { native } from '../util/native';

/** Mounts `spec` on `target` (an existing directory). */
export function mountSnapshot(spec: MountSpec, target: string): void {
  const n = native();
  if (spec.type === 'bind') {
    const ro = spec.options.includes('ro');
    n.mount(spec.source, target, null, n.mountConstants.MS_BIND | n.mountConstants.MS_REC, null);
    if (ro) {
      const c = n.mountConstants;
      n.mount(null, target, null, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY, null);
    }
    return;
  }
  n.mount(spec.source, target, spec.type, 0, spec.options.join(','));
}

/** Unmounts `target`; `detach` makes it lazy (MNT_DETACH) for busy mounts. */
export function unmountSnapshot(target: string, opts: { detach?: boolean } = {}): void {
  const n = native();
  n.umount2(target, (opts.detach ? n.mountConstants.MNT_DETACH : 0) | n.mountConstants.UMOUNT_NOFOLLOW);
}
