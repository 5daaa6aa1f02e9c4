// Pure builders of the OCI runtime spec of a pod's infra (sandbox) container and of its containers.
// Everything they need from the host comes in as parameters (HostFacts, RuntimeFeatures, stat
// results, resolved user, namespace paths), so the same input always gives the same spec.
import * as path from 'node:path';
import { failedPrecondition, invalidArgument, short } from '../errors';
import type {
  ContainerConfig__Output,
  LinuxContainerSecurityContext__Output,
  LinuxSandboxSecurityContext__Output,
  NamespaceMode__Output,
  NamespaceOption__Output,
  PodSandboxConfig__Output,
} from '../../api/generated';
import type { ImageConfig } from '../image/types';
import { buildCapabilities } from './capabilities';
import { buildMounts, type MountSource, type PodFiles } from './mounts';
import { buildArgs, buildCwd, buildEnv } from './process';
import { buildResources, clampOomScoreAdj, int64 } from './resources';
import { buildSeccomp, seccompRequestOf } from './seccomp';
import type { ResolvedUser } from './user';
import {
  OCI_VERSION,
  type OciDevice,
  type OciDeviceCgroup,
  type OciIdMapping,
  type OciNamespace,
  type OciProcess,
  type OciSpec,
} from './spec-types';

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** containerd's values for the infra container: tiny CPU weight, nearly unkillable by the OOM killer. */
export const SANDBOX_CPU_SHARES = 2;
export const SANDBOX_OOM_SCORE_ADJ = -998;

/** Annotation keys containerd puts on its specs (io.kubernetes.cri.*); tools and NRI plugins read them. */
export const ANNOTATIONS = {
  containerType: 'io.kubernetes.cri.container-type',
  sandboxId: 'io.kubernetes.cri.sandbox-id',
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
  sandboxUid: 'io.kubernetes.cri.sandbox-uid',
  sandboxLogDirectory: 'io.kubernetes.cri.sandbox-log-directory',
  containerName: 'io.kubernetes.cri.container-name',
  imageName: 'io.kubernetes.cri.image-name',
} as const;

/** What the runtime binary can do. */
export interface RuntimeFeatures {
  /** recursive read-only mounts (`rro`) */
  rro: boolean;
  /** the runtime's `features` mountOptions (recursive Mount.mount_options need them) */
  mountOptions?: string[];
  /** the memory cgroup accounts swap; default true */
  swap?: boolean;
  /** the hugetlb cgroup controller exists; default true */
  hugetlb?: boolean;
  /** give each container its own cgroup namespace (cgroup v2 hosts); default false */
  cgroupNamespace?: boolean;
  /** pods may have their own user namespace (runtime and kernel both support it); default false */
  userns?: boolean;
}

/** Facts about the host and the daemon, read by the caller. */
export interface HostFacts {
  /** device nodes of the host (for privileged containers); see host.ts listHostDevices */
  devices: OciDevice[];
  /** the daemon's effective capabilities: what privileged / add ALL grant; default every known capability */
  capabilities?: readonly string[];
  /** the daemon's own oom_score_adj */
  ownOomScoreAdj: number;
  /** raise requested oom_score_adj values below ownOomScoreAdj to it */
  restrictOomScoreAdj: boolean;
  appArmorAvailable: boolean;
  /** the loaded profile RuntimeDefault maps to, when AppArmor is available */
  appArmorDefaultProfile?: string;
  /** what an unset seccomp request means; default Unconfined (Kubernetes' default) */
  unsetSeccompProfile?: 'Unconfined' | 'RuntimeDefault';
  /** Go architecture name for seccomp; default from process.arch */
  arch?: string;
}

/** A host device node as stat(2) sees it. */
export interface HostDevice {
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** Namespace paths of the pod, usually /proc/<infra pid>/ns/<type> (the network one is the pinned netns). */
export interface SandboxNamespacePaths {
  /** unused when the pod uses the host network */
  network?: string;
  ipc?: string;
  uts?: string;
  pid?: string;
  /** the pod's user namespace (userns_options mode POD) */
  user?: string;
}

export interface ContainerSpecInput {
  /** the container's id */
  id: string;
  sandboxId: string;
  config: ContainerConfig__Output;
  sandboxConfig: PodSandboxConfig__Output;
  image: ImageConfig;
  /** the image reference, for the image-name annotation */
  imageName?: string;
  /** absolute path of the container's mounted rootfs */
  rootfs: string;
  /** from resolveUser(userRequestFrom(config.linux.security_context, image User), files) */
  user: ResolvedUser;
  namespaces: SandboxNamespacePaths;
  /** pid namespace of the target container when namespace_options.pid is TARGET */
  targetPidNamespace?: string;
  podFiles: PodFiles;
  /** the pod's hostname, for the HOSTNAME variable */
  hostname: string;
  /** from cgroupsPathFor */
  cgroupsPath: string;
  /** host facts per CRI mount host_path (null: missing); see MountOptions.sources */
  mountSources?: Record<string, MountSource | null>;
  /** image volumes: the host dir to bind per index in config.mounts; see MountOptions.imageSources */
  imageSources?: Record<number, string>;
  /** stat results per CRI device host_path (null: missing) */
  devices?: Record<string, HostDevice | null>;
  /** parsed JSON of the Localhost seccomp profile, when one is requested */
  seccompProfile?: unknown;
  host: HostFacts;
  features: RuntimeFeatures;
}

export interface SandboxSpecInput {
  id: string;
  config: PodSandboxConfig__Output;
  /** the pause image's config */
  image: ImageConfig;
  imageName?: string;
  rootfs: string;
  /** from resolveUser(userRequestFrom(config.linux.security_context, image User), files) */
  user: ResolvedUser;
  /** the pinned network namespace; ignored with host network */
  netnsPath?: string;
  /** join this user namespace instead of creating one (userns mode POD) */
  userNamespacePath?: string;
  /** only shm is used: the pod's /dev/shm */
  podFiles: PodFiles;
  cgroupsPath: string;
  seccompProfile?: unknown;
  host: HostFacts;
  features: RuntimeFeatures;
}

type SecurityContext = LinuxContainerSecurityContext__Output | LinuxSandboxSecurityContext__Output;

/** A namespace's mode in CRI namespace options; absent is POD, the enum's zero value. */
export function modeOf(
  ns: NamespaceOption__Output | null | undefined,
  key: 'network' | 'pid' | 'ipc',
): NamespaceMode__Output {
  return ns?.[key] ?? 'POD';
}

function idMappings(
  list: { host_id: number; container_id: number; length: number }[],
  field: string,
): OciIdMapping[] {
  if (!list.length) throw invalidArgument(`userns_options: ${field} must not be empty with mode POD`);
  return list.map((m) => {
    if (!(m.length > 0)) throw invalidArgument(`userns_options: ${field} mapping length must be positive`);
    return { containerID: m.container_id, hostID: m.host_id, size: m.length };
  });
}

/** uid/gid mappings when the pod has its own user namespace (mode POD); undefined for the host's. */
function userNamespace(
  ns: NamespaceOption__Output | null | undefined,
): { uid: OciIdMapping[]; gid: OciIdMapping[] } | undefined {
  const u = ns?.userns_options;
  if (!u || u.mode === 'NODE') return undefined;
  if (u.mode !== 'POD')
    throw invalidArgument(`userns_options: mode ${short(u.mode)} is not supported (POD or NODE)`);
  return { uid: idMappings(u.uids, 'uids'), gid: idMappings(u.gids, 'gids') };
}

function appArmorProfile(
  sc: SecurityContext | null | undefined,
  privileged: boolean,
  host: HostFacts,
): string | undefined {
  let type: string | undefined;
  let ref = '';
  if (sc?.apparmor) {
    type = sc.apparmor.profile_type;
    ref = sc.apparmor.localhost_ref;
  } else if (sc && 'apparmor_profile' in sc && sc.apparmor_profile) {
    const p = sc.apparmor_profile;
    if (p === 'runtime/default') type = 'RuntimeDefault';
    else if (p === 'unconfined') type = 'Unconfined';
    else if (p.startsWith('localhost/')) [type, ref] = ['Localhost', p.slice('localhost/'.length)];
    else throw invalidArgument(`apparmor_profile: unsupported value ${short(p)}`);
  }
  if (!host.appArmorAvailable) {
    if (type !== undefined && type !== 'Unconfined')
      throw failedPrecondition(
        `AppArmor is not available on this node: cannot apply the ${type} AppArmor profile`,
      );
    return undefined;
  }
  if (privileged || type === 'Unconfined') return undefined;
  if (type === 'Localhost') {
    const name = ref.replace(/^localhost\//, '');
    if (!name) throw invalidArgument('apparmor: Localhost needs localhost_ref');
    return name;
  }
  if (type === 'RuntimeDefault' && !host.appArmorDefaultProfile)
    throw failedPrecondition('AppArmor: no default profile is loaded for RuntimeDefault');
  return host.appArmorDefaultProfile;
}

function sysctls(pod: PodSandboxConfig__Output): Record<string, string> | undefined {
  const s = pod.linux?.sysctls;
  if (!s || Object.keys(s).length === 0) return undefined;
  for (const k of Object.keys(s))
    if (!/^[a-zA-Z0-9_./-]+$/.test(k) || k.includes('..'))
      throw invalidArgument(`sysctls: invalid name ${short(k)}`);
  return { ...s };
}

function podAnnotations(id: string, pod: PodSandboxConfig__Output): Record<string, string> {
  return {
    [ANNOTATIONS.sandboxId]: id,
    [ANNOTATIONS.sandboxName]: pod.metadata?.name ?? '',
    [ANNOTATIONS.sandboxNamespace]: pod.metadata?.namespace ?? '',
    [ANNOTATIONS.sandboxUid]: pod.metadata?.uid ?? '',
  };
}

const PERMISSIONS = /^[rwm]{1,3}$/;

function criDevices(
  config: ContainerConfig__Output,
  stats: Record<string, HostDevice | null> | undefined,
): { devices: OciDevice[]; rules: OciDeviceCgroup[] } {
  const devices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = [];
  for (const d of config.devices ?? []) {
    const where = `device ${short(d.host_path)}`;
    if (!d.host_path || !path.posix.isAbsolute(d.host_path))
      throw invalidArgument(`${where}: host_path must be absolute`);
    const dest = d.container_path || d.host_path;
    if (!path.posix.isAbsolute(dest))
      throw invalidArgument(`${where}: container_path ${short(dest)} must be absolute`);
    const perms = d.permissions || 'rwm';
    if (!PERMISSIONS.test(perms) || new Set(perms).size !== perms.length)
      throw invalidArgument(`${where}: invalid permissions ${short(perms)} (a combination of r, w, m)`);
    const st = stats?.[d.host_path];
    if (!st) throw invalidArgument(`${where}: no such device on the host`);
    devices.push({
      path: path.posix.normalize(dest),
      type: st.type,
      major: st.major,
      minor: st.minor,
      fileMode: st.fileMode,
      uid: st.uid,
      gid: st.gid,
    });
    if (st.type !== 'p')
      rules.push({ allow: true, type: st.type, major: st.major, minor: st.minor, access: perms });
  }
  return { devices, rules };
}

function numberOrZero(v: string | undefined, field: string): number {
  return int64(v, field);
}

export function buildContainerSpec(input: ContainerSpecInput): OciSpec {
  const { config, sandboxConfig: pod, host } = input;
  const sc = config.linux?.security_context ?? null;
  const privileged = sc?.privileged ?? false;
  if (privileged && !pod.linux?.security_context?.privileged)
    throw invalidArgument(
      'privileged containers need a privileged pod (linux.security_context.privileged of the sandbox)',
    );
  const nsOpts = sc?.namespace_options;
  const img = input.image.config;

  const caps = buildCapabilities({
    privileged,
    request: sc?.capabilities,
    hostCapabilities: host.capabilities,
  });
  const resources = config.linux?.resources ?? null;
  const oom = clampOomScoreAdj(
    numberOrZero(resources?.oom_score_adj, 'oom_score_adj'),
    host.ownOomScoreAdj,
    host.restrictOomScoreAdj,
  );
  const process: OciProcess = {
    terminal: config.tty || undefined,
    user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...input.user.additionalGids] },
    args: buildArgs(config.command, config.args, img),
    env: buildEnv(img?.Env, config.envs, input.hostname),
    cwd: buildCwd(config.working_dir, img?.WorkingDir),
    capabilities: caps,
    noNewPrivileges: sc?.no_new_privs || undefined,
    apparmorProfile: appArmorProfile(sc, privileged, host),
    oomScoreAdj: oom,
  };

  // namespaces: joined from the infra container, the host's where the pod asked for NODE
  const namespaces: OciNamespace[] = [{ type: 'mount' }];
  const need = (p: string | undefined, what: string): string => {
    if (!p) throw failedPrecondition(`the sandbox has no ${what} namespace to join`);
    return p;
  };
  const netMode = modeOf(nsOpts, 'network');
  if (netMode !== 'NODE') {
    namespaces.push({ type: 'network', path: need(input.namespaces.network, 'network') });
    namespaces.push({ type: 'uts', path: need(input.namespaces.uts, 'uts') });
  }
  const ipcMode = modeOf(nsOpts, 'ipc');
  if (ipcMode === 'CONTAINER') namespaces.push({ type: 'ipc' });
  else if (ipcMode !== 'NODE') namespaces.push({ type: 'ipc', path: need(input.namespaces.ipc, 'ipc') });
  const pidMode = modeOf(nsOpts, 'pid');
  switch (pidMode) {
    case 'POD':
      namespaces.push({ type: 'pid', path: need(input.namespaces.pid, 'pid') });
      break;
    case 'CONTAINER':
      namespaces.push({ type: 'pid' });
      break;
    case 'TARGET':
      if (!nsOpts?.target_id) throw invalidArgument('namespace_options: pid TARGET needs target_id');
      if (!input.targetPidNamespace)
        throw failedPrecondition(
          `the target container ${short(nsOpts.target_id)} has no pid namespace to join`,
        );
      namespaces.push({ type: 'pid', path: input.targetPidNamespace });
      break;
    case 'NODE':
      break;
    default:
      throw invalidArgument(`namespace_options: unknown pid mode ${short(pidMode)}`);
  }
  const userns = userNamespace(nsOpts);
  if (userns) namespaces.push({ type: 'user', path: need(input.namespaces.user, 'user') });
  if (input.features.cgroupNamespace) namespaces.push({ type: 'cgroup' });

  const { mounts, rootfsPropagation } = buildMounts({
    criMounts: config.mounts ?? [],
    podFiles: input.podFiles,
    privileged,
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    ipcMode,
    sources: input.mountSources,
    rroSupported: input.features.rro,
    imageSources: input.imageSources,
    runtimeMountOptions: input.features.mountOptions,
    sysfsFromHost: !!userns && netMode === 'NODE',
  });

  const res = buildResources(resources, {
    swapSupported: input.features.swap ?? true,
    hugetlbSupported: input.features.hugetlb ?? true,
  });
  const requested = criDevices(config, input.devices);
  let devices: OciDevice[];
  if (privileged) {
    const byPath = new Map(host.devices.map((d) => [d.path, d]));
    for (const d of requested.devices) byPath.set(d.path, d);
    devices = [...byPath.values()];
    res.devices = [{ allow: true, access: 'rwm' }];
  } else {
    devices = requested.devices;
    res.devices = [{ allow: false, access: 'rwm' }, ...requested.rules];
  }

  const seccomp = buildSeccomp({
    privileged,
    request: seccompRequestOf(sc),
    unsetProfile: host.unsetSeccompProfile,
    localhostProfile: input.seccompProfile,
    capabilities: caps.bounding,
    arch: host.arch,
  });

  const masked = privileged
    ? []
    : sc?.masked_paths?.length
      ? [...sc.masked_paths]
      : [...DEFAULT_MASKED_PATHS];
  const readonly = privileged
    ? []
    : sc?.readonly_paths?.length
      ? [...sc.readonly_paths]
      : [...DEFAULT_READONLY_PATHS];

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process,
    root: { path: input.rootfs, readonly: sc?.readonly_rootfs || undefined },
    mounts,
    annotations: {
      [ANNOTATIONS.containerType]: 'container',
      ...podAnnotations(input.sandboxId, pod),
      [ANNOTATIONS.containerName]: config.metadata?.name ?? '',
      ...(input.imageName ? { [ANNOTATIONS.imageName]: input.imageName } : {}),
    },
    linux: {
      namespaces,
      uidMappings: userns?.uid,
      gidMappings: userns?.gid,
      devices: devices.length ? devices : undefined,
      cgroupsPath: input.cgroupsPath,
      resources: res,
      rootfsPropagation,
      seccomp,
      sysctl: sysctls(pod),
      maskedPaths: masked.length ? masked : undefined,
      readonlyPaths: readonly.length ? readonly : undefined,
    },
  };
  return prune(spec);
}

export function buildSandboxSpec(input: SandboxSpecInput): OciSpec {
  const { config: pod, host } = input;
  const sc = pod.linux?.security_context ?? null;
  const privileged = sc?.privileged ?? false;
  const nsOpts = sc?.namespace_options;
  const img = input.image.config;

  const netMode = modeOf(nsOpts, 'network');
  const ipcMode = modeOf(nsOpts, 'ipc');
  const pidMode = modeOf(nsOpts, 'pid');
  const namespaces: OciNamespace[] = [{ type: 'mount' }];
  let hostname: string | undefined;
  if (netMode !== 'NODE') {
    if (!input.netnsPath) throw failedPrecondition('the pod has no network namespace to join');
    namespaces.push({ type: 'network', path: input.netnsPath });
    namespaces.push({ type: 'uts' });
    hostname = pod.hostname || undefined;
  }
  if (ipcMode !== 'NODE') namespaces.push({ type: 'ipc' });
  if (pidMode !== 'NODE') namespaces.push({ type: 'pid' });
  const userns = userNamespace(nsOpts);
  if (userns)
    namespaces.push(
      input.userNamespacePath ? { type: 'user', path: input.userNamespacePath } : { type: 'user' },
    );
  if (input.features.cgroupNamespace) namespaces.push({ type: 'cgroup' });

  const { mounts } = buildMounts({
    criMounts: [],
    podFiles: { shm: input.podFiles.shm },
    privileged,
    readonlyRootfs: true,
    ipcMode,
    rroSupported: input.features.rro,
    sysfsFromHost: !!userns && netMode === 'NODE',
  });

  // the infra container only waits for signals: no capabilities at all
  const caps = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
  const process: OciProcess = {
    user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...input.user.additionalGids] },
    args: buildArgs(undefined, undefined, img),
    env: buildEnv(img?.Env, []),
    cwd: buildCwd(undefined, img?.WorkingDir),
    capabilities: caps,
    noNewPrivileges: true,
    apparmorProfile: appArmorProfile(sc, privileged, host),
    oomScoreAdj: clampOomScoreAdj(SANDBOX_OOM_SCORE_ADJ, host.ownOomScoreAdj, host.restrictOomScoreAdj),
  };

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process,
    root: { path: input.rootfs, readonly: true },
    hostname,
    mounts,
    annotations: {
      [ANNOTATIONS.containerType]: 'sandbox',
      ...podAnnotations(input.id, pod),
      [ANNOTATIONS.sandboxLogDirectory]: pod.log_directory ?? '',
      ...(input.imageName ? { [ANNOTATIONS.imageName]: input.imageName } : {}),
    },
    linux: {
      namespaces,
      uidMappings: userns?.uid,
      gidMappings: userns?.gid,
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: privileged ? [{ allow: true, access: 'rwm' }] : [{ allow: false, access: 'rwm' }],
        cpu: { shares: SANDBOX_CPU_SHARES },
      },
      seccomp: buildSeccomp({
        privileged,
        request: seccompRequestOf(sc),
        unsetProfile: host.unsetSeccompProfile,
        localhostProfile: input.seccompProfile,
        capabilities: caps.bounding,
        arch: host.arch,
      }),
      sysctl: sysctls(pod),
      maskedPaths: privileged ? undefined : [...DEFAULT_MASKED_PATHS],
      readonlyPaths: privileged ? undefined : [...DEFAULT_READONLY_PATHS],
    },
  };
  return prune(spec);
}

/** Drops undefined fields so config.json holds only what was set (and specs compare cleanly). */
function prune<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => prune(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = prune(v);
    return out as T;
  }
  return value;
}
