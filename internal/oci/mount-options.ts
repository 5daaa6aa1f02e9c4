// Mount.mount_options (cri-api main line): extra options for a CRI bind mount, passed on as OCI
// mount options. Berth accepts exactly the options a bind mount can take as per-mount flags,
// which runc (and crun) apply by remounting the bind: ro/rw, nosuid/suid, nodev/dev, noexec/exec
// and the atime family. Their recursive forms (rnosuid, rro, ...; mount_setattr, kernel 5.12+) are
// accepted when the runtime lists them in `<runtime> features`. Everything else is refused with
// INVALID_ARGUMENT naming the option: filesystem options (size=, uid=, ...) mean nothing to a
// bind, propagation has its own field (Mount.propagation), and an option two ways at once (noexec
// and exec) is a contradiction. RuntimeFeatures.mount_options is true because of this table.

/** Per-mount options runc applies to a bind mount (by remount), each with its group. */
const BIND_OPTIONS: Record<string, string> = {
  ro: 'ro',
  rw: 'ro',
  nosuid: 'suid',
  suid: 'suid',
  nodev: 'dev',
  dev: 'dev',
  noexec: 'exec',
  exec: 'exec',
  atime: 'atime',
  noatime: 'atime',
  relatime: 'atime',
  norelatime: 'atime',
  strictatime: 'atime',
  nostrictatime: 'atime',
  diratime: 'diratime',
  nodiratime: 'diratime',
};

/** Recursive forms (mount_setattr with AT_RECURSIVE); accepted when the runtime lists them. */
const RECURSIVE_OPTIONS: Record<string, string> = {
  rro: 'ro',
  rrw: 'ro',
  rnosuid: 'suid',
  rsuid: 'suid',
  rnodev: 'dev',
  rdev: 'dev',
  rnoexec: 'exec',
  rexec: 'exec',
  ratime: 'atime',
  rnoatime: 'atime',
  rrelatime: 'atime',
  rnorelatime: 'atime',
  rstrictatime: 'atime',
  rnostrictatime: 'atime',
  rdiratime: 'diratime',
  rnodiratime: 'diratime',
};

const PROPAGATION = new Set([
  'private',
  'rprivate',
  'shared',
  'rshared',
  'slave',
  'rslave',
  'unbindable',
  'runbindable',
]);

/** The options Berth accepts, given the runtime's own `features` mountOptions (undefined: unknown). */
export function acceptedMountOptions(runtimeOptions: readonly string[] | undefined): string[] {
  const rec = Object.keys(RECURSIVE_OPTIONS).filter((o) => runtimeOptions?.includes(o));
  return [...Object.keys(BIND_OPTIONS), ...rec];
}

export interface MountOptionsRequest {
  options: readonly string[];
  /** Mount.readonly */
  readonly: boolean;
  /** Mount.recursive_read_only */
  recursiveReadOnly: boolean;
  /** the runtime's `features` mountOptions, undefined when it has no `features` command */
  runtimeOptions: readonly string[] | undefined;
}

export type MountOptionsPlan =
  | {
      ok: true;
      /** options to add after rbind/propagation/ro|rw (never ro, rw, rro or rrw: see readonly) */
      extra: string[];
      /** the mount is read-only (Mount.readonly, or "ro"/"rro" among the options) */
      readonly: boolean;
      /** the mount is recursively read-only (Mount.recursive_read_only, or "rro") */
      recursiveReadOnly: boolean;
    }
  | { ok: false; option: string; reason: string };

/** Checks and resolves a mount's mount_options. Pure: the caller turns a refusal into a status. */
export function planMountOptions(req: MountOptionsRequest): MountOptionsPlan {
  let readonly = req.readonly;
  let recursiveReadOnly = req.recursiveReadOnly;
  const extra: string[] = [];
  const seen = new Map<string, string>();
  if (req.recursiveReadOnly) seen.set('ro', 'recursive_read_only');
  else if (req.readonly) seen.set('ro', 'readonly');
  for (const raw of req.options) {
    const o = raw.trim();
    if (o === '') return { ok: false, option: raw, reason: 'is empty' };
    if (PROPAGATION.has(o))
      return { ok: false, option: o, reason: 'is propagation: set Mount.propagation instead' };
    let group = BIND_OPTIONS[o];
    if (!group && RECURSIVE_OPTIONS[o]) {
      if (!req.runtimeOptions?.includes(o))
        return { ok: false, option: o, reason: 'is not supported by the runtime (not in its features)' };
      group = RECURSIVE_OPTIONS[o];
    }
    if (!group)
      return {
        ok: false,
        option: o,
        reason: `is not supported (accepted: ${acceptedMountOptions(req.runtimeOptions).join(', ')})`,
      };
    const before = seen.get(group);
    if (before !== undefined && before !== o && !(group === 'ro' && agreesOnRo(before, o)))
      return { ok: false, option: o, reason: `contradicts ${before}` };
    seen.set(group, before ?? o);
    if (group === 'ro') {
      if (o === 'ro' || o === 'rro') readonly = true;
      if (o === 'rro') recursiveReadOnly = true;
      continue;
    }
    if (!extra.includes(o)) extra.push(o);
  }
  return { ok: true, extra, readonly, recursiveReadOnly };
}

/** ro-group entries that say the same thing: readonly fields and ro/rro, or rw/rrw. */
function agreesOnRo(a: string, b: string): boolean {
  const ro = (x: string): boolean => x !== 'rw' && x !== 'rrw';
  return ro(a) === ro(b);
}
