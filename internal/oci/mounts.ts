// The mount table of a container: the Linux defaults (/proc, /dev, /dev/pts, /dev/mqueue, /sys,
// /sys/fs/cgroup), the pod's shared files (/etc/hostname, /etc/hosts, /etc/resolv.conf and
// /dev/shm) and the CRI mounts with their readonly and propagation settings.
//
// Following containerd: the pod files are read-write binds unless the container's rootfs is
// read-only (then read-only); a CRI mount at a destination replaces the default there, and a CRI
// mount at /dev replaces every default under /dev; /dev/shm is the host's when the pod uses the
// host IPC namespace. Mounts are ordered so a parent is mounted before its children. An image
// volume (Mount.image) is a read-only bind of the directory the container service prepared for it
// (internal/container/image-volumes.ts).
import * as path from 'node:path';
import { failedPrecondition, internalError, invalidArgument, short } from '../errors';
import type { Mount__Output, NamespaceMode__Output } from '../../api/generated';
import { planMountOptions } from './mount-options';
import type { OciMount } from './spec-types';

/** Paths of the pod's shared files on the host (in the pod dir); unset ones are not mounted. */
export interface PodFiles {
  hostname?: string;
  hosts?: string;
  resolvConf?: string;
  /** the pod's /dev/shm tmpfs; without it the container gets a private tmpfs */
  shm?: string;
}

/** What the caller found on the host for a CRI mount's host_path. */
export interface MountSource {
  /** the host path with symlinks resolved */
  realPath: string;
  /** propagation of the host mount holding it, when known; checked for shared/slave requests */
  propagation?: 'shared' | 'slave' | 'private';
}

export interface MountOptions {
  criMounts: Mount__Output[];
  podFiles: PodFiles;
  privileged: boolean;
  readonlyRootfs: boolean;
  /** the container's IPC namespace mode: NODE shares the host's /dev/shm */
  ipcMode?: NamespaceMode__Output;
  /**
   * Host facts for each CRI mount's host_path (keyed by host_path as requested): null means the
   * path does not exist, which is refused. When the map is absent, host paths are used unchecked.
   */
  sources?: Record<string, MountSource | null>;
  /** the runtime supports recursive read-only (`rro`) mounts */
  rroSupported: boolean;
  /**
   * Image volumes: per index in criMounts of a mount with `image` set, the host directory to bind
   * (the image's read-only view, at the resolved sub-path).
   */
  imageSources?: Record<number, string>;
  /** the runtime's `features` mountOptions (for recursive mount_options); undefined: unknown */
  runtimeMountOptions?: readonly string[];
  /**
   * /sys is a read-only bind of the host's instead of a new sysfs: a container in its own user
   * namespace on the host network may not mount sysfs (the kernel wants the network namespace's
   * owner), as for rootless runc.
   */
  sysfsFromHost?: boolean;
}

export interface MountResult {
  mounts: OciMount[];
  /** set when a CRI mount needs shared or slave propagation from the rootfs */
  rootfsPropagation?: 'rshared' | 'rslave';
}

const CLEAN = (p: string): string => path.posix.normalize(p).replace(/(.)\/+$/, '$1');

export function defaultMounts(privileged: boolean): OciMount[] {
  const sysMode = privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysMode] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', sysMode],
    },
  ];
}

const bind = (destination: string, source: string, readonly: boolean): OciMount => ({
  destination,
  type: 'bind',
  source,
  options: ['rbind', 'rprivate', readonly ? 'ro' : 'rw'],
});

/** Stable sort by depth of the destination: parents before children, otherwise request order. */
export function sortMounts(mounts: OciMount[]): OciMount[] {
  const depth = (m: OciMount): number =>
    CLEAN(m.destination)
      .split('/')
      .filter((s) => s !== '').length;
  return mounts
    .map((m, i) => ({ m, i, d: depth(m) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .map((x) => x.m);
}

function criMount(m: Mount__Output, index: number, opts: MountOptions, result: MountResult): OciMount {
  const dest = m.container_path;
  const where = `mount ${short(dest)}`;
  if (!dest || !path.posix.isAbsolute(dest))
    throw invalidArgument(`${where}: container_path must be an absolute path`);
  if (CLEAN(dest) === '/') throw invalidArgument(`${where}: cannot mount over the container's root`);
  // Mount.mount_options: the bind options Berth applies (./mount-options.ts), others refused
  const plan = planMountOptions({
    options: m.mount_options ?? [],
    readonly: m.readonly ?? false,
    recursiveReadOnly: m.recursive_read_only ?? false,
    runtimeOptions: opts.runtimeMountOptions,
  });
  if (!plan.ok) throw invalidArgument(`${where}: mount option ${short(plan.option)} ${plan.reason}`);
  if (m.uidMappings?.length || m.gidMappings?.length)
    throw invalidArgument(`${where}: id-mapped mounts are not supported by this runtime`);
  if (m.image?.image) return imageMount(m, index, opts, plan.extra);
  if (m.image_sub_path) throw invalidArgument(`${where}: image_sub_path is set but image is not`);
  if (!m.host_path) throw invalidArgument(`${where}: host_path is empty`);
  if (!path.posix.isAbsolute(m.host_path))
    throw invalidArgument(`${where}: host_path ${short(m.host_path)} is not absolute`);

  let source = m.host_path;
  let hostProp: MountSource['propagation'];
  if (opts.sources) {
    const s = opts.sources[m.host_path];
    if (!s) throw invalidArgument(`${where}: host path ${short(m.host_path)} does not exist`);
    source = s.realPath;
    hostProp = s.propagation;
  }

  const options = ['rbind'];
  const prop = m.propagation ?? 'PROPAGATION_PRIVATE';
  switch (prop) {
    case 'PROPAGATION_PRIVATE':
      options.push('rprivate');
      break;
    case 'PROPAGATION_HOST_TO_CONTAINER':
      if (hostProp === 'private')
        throw failedPrecondition(
          `${where}: host path ${short(m.host_path)} is not on a shared or slave mount`,
        );
      options.push('rslave');
      if (result.rootfsPropagation !== 'rshared') result.rootfsPropagation = 'rslave';
      break;
    case 'PROPAGATION_BIDIRECTIONAL':
      if (hostProp && hostProp !== 'shared')
        throw failedPrecondition(`${where}: host path ${short(m.host_path)} is not on a shared mount`);
      options.push('rshared');
      result.rootfsPropagation = 'rshared';
      break;
    default:
      throw invalidArgument(`${where}: unknown propagation ${short(prop)}`);
  }
  if (plan.recursiveReadOnly) {
    if (!plan.readonly) throw invalidArgument(`${where}: recursive_read_only needs readonly`);
    if (prop !== 'PROPAGATION_PRIVATE')
      throw invalidArgument(`${where}: recursive_read_only needs private propagation`);
    if (!opts.rroSupported)
      throw invalidArgument(`${where}: recursive read-only mounts are not supported by the runtime`);
    options.push('rro');
  } else {
    options.push(plan.readonly ? 'ro' : 'rw');
  }
  options.push(...plan.extra);
  return { destination: CLEAN(dest), type: 'bind', source, options };
}

/**
 * An image volume: a read-only, private bind of the directory the caller prepared, whatever
 * readonly and propagation say (the view never changes and has nothing to propagate).
 */
/** An image volume: always read-only (whatever readonly says), with the accepted bind options. */
function imageMount(m: Mount__Output, index: number, opts: MountOptions, extra: string[]): OciMount {
  const source = opts.imageSources?.[index];
  if (!source)
    throw internalError(
      `mount ${short(m.container_path)}: image volume ${short(m.image?.image)} was not prepared`,
    );
  return {
    destination: CLEAN(m.container_path),
    type: 'bind',
    source,
    options: ['rbind', 'rprivate', 'ro', ...extra],
  };
}

export function buildMounts(opts: MountOptions): MountResult {
  const result: MountResult = { mounts: [] };
  const cri = opts.criMounts.map((m, i) => criMount(m, i, opts, result));
  const requested = new Set(cri.map((m) => m.destination));
  const devReplaced = requested.has('/dev');
  const keep = (dest: string): boolean => !requested.has(dest) && !(devReplaced && dest.startsWith('/dev/'));

  const base: OciMount[] = [];
  for (const m of defaultMounts(opts.privileged)) {
    if (!keep(m.destination)) continue;
    if (m.destination === '/sys' && opts.sysfsFromHost) {
      base.push({
        destination: '/sys',
        type: 'bind',
        source: '/sys',
        options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', opts.rroSupported ? 'rro' : 'ro'],
      });
      continue;
    }
    if (m.destination === '/dev/shm') {
      if (opts.ipcMode === 'NODE') base.push(bind('/dev/shm', '/dev/shm', false));
      else if (opts.podFiles.shm) base.push(bind('/dev/shm', opts.podFiles.shm, false));
      else base.push(m);
      continue;
    }
    base.push(m);
  }
  const ro = opts.readonlyRootfs;
  const pf = opts.podFiles;
  if (pf.hostname && keep('/etc/hostname')) base.push(bind('/etc/hostname', pf.hostname, ro));
  if (pf.hosts && keep('/etc/hosts')) base.push(bind('/etc/hosts', pf.hosts, ro));
  if (pf.resolvConf && keep('/etc/resolv.conf')) base.push(bind('/etc/resolv.conf', pf.resolvConf, ro));

  result.mounts = sortMounts([...base, ...cri]);
  return result;
}
