// The pure heart of `berthctl play`: a (defaulted) Pod → the CRI requests kubelet would send.
// Follows pkg/kubelet/kuberuntime (kuberuntime_sandbox.go generatePodSandboxConfig,
// kuberuntime_container.go generateContainerConfig, security_context.go, labels.go), pkg/kubelet
// /network/dns (GetPodDNS) and pkg/kubelet/container/helpers.go (MakePortMappings).
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../oci/spec';
import type { V1Container, V1Pod, V1SeccompProfile, V1SecurityContext } from '@kubernetes/client-node';
import type {
  ContainerConfig,
  DNSConfig,
  LinuxContainerSecurityContext,
  Mount,
  NamespaceOption,
  PodSandboxConfig,
  PortMapping,
  SecurityProfile,
} from '../../api/generated';
import { containerEnv, expandCommand, type EnvContext } from './env';
import { PLAY_LABEL } from './manifest';
import { containerResources, podCgroupParent, podQos, sandboxResources } from './resources';
import type { ImageVolume, VolumePlan } from './volumes';

export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_UID_LABEL = 'io.kubernetes.pod.uid';
export const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';

export const LOG_ROOT = '/var/log/pods';
/** kubelet's --seccomp-profile-root default: where Localhost profiles live */
export const SECCOMP_ROOT = '/var/lib/kubelet/seccomp';

/** What play knows about the node it runs on. */
export interface NodeInfo {
  /** the node's hostname, also the pod's node name */
  name: string;
  hostIP: string;
  memoryCapacity: number;
  cpuMilli: number;
  /** the node's resolv.conf, for dnsPolicy Default (and ClusterFirst: there is no cluster DNS) */
  resolv: { servers: string[]; searches: string[]; options: string[] };
  /** the pod's files (volumes, termination logs): <podsDir>/<uid>/ as kubelet's /var/lib/kubelet/pods */
  podsDir: string;
  logRoot?: string;
}

/** parses resolv.conf text */
export function parseResolvConf(text: string): NodeInfo['resolv'] {
  const r: NodeInfo['resolv'] = { servers: [], searches: [], options: [] };
  for (const line of text.split('\n')) {
    const f = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) r.servers.push(f[1]);
    else if (f[0] === 'search' || f[0] === 'domain') r.searches = f.slice(1);
    else if (f[0] === 'options') r.options.push(...f.slice(1));
  }
  return r;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** mergeDNSOptions: the pod's options override the base's by name. */
function mergeOptions(base: string[], pod: { name?: string; value?: string }[]): string[] {
  const m = new Map<string, string | undefined>();
  for (const o of base) {
    const i = o.indexOf(':');
    m.set(i < 0 ? o : o.slice(0, i), i < 0 ? undefined : o.slice(i + 1));
  }
  for (const o of pod) if (o.name) m.set(o.name, o.value);
  return [...m].map(([k, v]) => (v === undefined ? k : `${k}:${v}`));
}

/**
 * GetPodDNS. There is no cluster DNS here, so ClusterFirst (and ClusterFirstWithHostNet) fall back
 * to Default, the node's resolv.conf, as kubelet does when it has no clusterDNS configured.
 */
export function podDns(pod: V1Pod, node: NodeInfo): DNSConfig {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst';
  const base: DNSConfig =
    policy === 'None'
      ? { servers: [], searches: [], options: [] }
      : {
          servers: [...node.resolv.servers],
          searches: [...node.resolv.searches],
          options: [...node.resolv.options],
        };
  const extra = pod.spec?.dnsConfig;
  if (!extra) return base;
  return {
    servers: unique([...(base.servers ?? []), ...(extra.nameservers ?? [])]),
    searches: unique([...(base.searches ?? []), ...(extra.searches ?? [])]),
    options: mergeOptions(base.options ?? [], extra.options ?? []),
  };
}

/** MakePortMappings over the app containers (init containers' ports are not mapped). */
export function portMappings(pod: V1Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const names = new Set<string>();
    for (const p of c.ports ?? []) {
      const family = p.hostIP && p.hostIP.includes(':') ? 'IPv6' : 'IPv4';
      const name = p.name
        ? `${c.name}-${p.name}`
        : `${family}-${p.protocol}-${p.hostIP ?? ''}:${p.containerPort}`;
      if (names.has(name)) continue;
      names.add(name);
      out.push({
        protocol: (p.protocol ?? 'TCP') as PortMapping['protocol'],
        container_port: p.containerPort,
        host_port: p.hostPort ?? 0,
        host_ip: p.hostIP ?? '',
      });
    }
  }
  return out;
}

/** GeneratePodHostNameAndDomain: spec.hostname, else the pod name cut to 63 characters. */
export function podHostname(pod: V1Pod): string {
  if (pod.spec?.hostname) return pod.spec.hostname;
  return (pod.metadata?.name ?? '').slice(0, 63).replace(/[-.]+$/, '');
}

/** kubelet's user namespace for hostUsers: false: 65536 ids at a multiple of 65536, per pod. */
function userNamespace(pod: V1Pod): NamespaceOption['userns_options'] {
  if (pod.spec?.hostUsers !== false) return { mode: 'NODE' };
  let h = 0;
  for (const ch of pod.metadata?.uid ?? '') h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const hostId = 65536 * (1 + (h % 1024));
  const map = [{ host_id: hostId, container_id: 0, length: 65536 }];
  return { mode: 'POD', uids: map, gids: map };
}

/** namespacesForPod */
export function namespaceOptions(pod: V1Pod): NamespaceOption {
  const s = pod.spec ?? { containers: [] };
  return {
    network: s.hostNetwork ? 'NODE' : 'POD',
    pid: s.hostPID ? 'NODE' : s.shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: s.hostIPC ? 'NODE' : 'POD',
    userns_options: userNamespace(pod),
  };
}

/** getSeccompProfile: the container's, else the pod's, else Unconfined (kubelet without SeccompDefault). */
export function seccompProfile(pod?: V1SeccompProfile, ctr?: V1SeccompProfile): SecurityProfile {
  const p = ctr ?? pod;
  if (!p) return { profile_type: 'Unconfined' };
  switch (p.type) {
    case 'RuntimeDefault':
      return { profile_type: 'RuntimeDefault' };
    case 'Unconfined':
      return { profile_type: 'Unconfined' };
    case 'Localhost':
      if (!p.localhostProfile) throw new Error('seccompProfile Localhost needs localhostProfile');
      return { profile_type: 'Localhost', localhost_ref: `${SECCOMP_ROOT}/${p.localhostProfile}` };
  }
  throw new Error(
    `seccompProfile type ${JSON.stringify(p.type)} is not RuntimeDefault, Unconfined or Localhost`,
  );
}

/** kubelet's securitycontext.DefaultProcMountMaskedPaths / DefaultProcMountReadonlyPaths: the same
 * lists as the runtime's defaults (internal/oci/spec.ts) */
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS };

function podSupplementalGroups(pod: V1Pod): number[] {
  const sc = pod.spec?.securityContext;
  const groups: number[] = [];
  if (sc?.fsGroup !== undefined) groups.push(sc.fsGroup);
  groups.push(...(sc?.supplementalGroups ?? []));
  return groups;
}

/** determineEffectiveSecurityContext + convertToRuntimeSecurityContext. */
export function containerSecurityContext(pod: V1Pod, c: V1Container): LinuxContainerSecurityContext {
  const psc = pod.spec?.securityContext ?? {};
  const csc: V1SecurityContext = c.securityContext ?? {};
  const runAsUser = csc.runAsUser ?? psc.runAsUser;
  const runAsGroup = csc.runAsGroup ?? psc.runAsGroup;
  const privileged = csc.privileged ?? false;
  const sc: LinuxContainerSecurityContext = {
    namespace_options: namespaceOptions(pod),
    privileged,
    readonly_rootfs: csc.readOnlyRootFilesystem ?? false,
    supplemental_groups: podSupplementalGroups(pod),
    // AddNoNewPrivileges: only an explicit allowPrivilegeEscalation: false of an unprivileged container
    no_new_privs: !privileged && csc.allowPrivilegeEscalation === false,
    seccomp: seccompProfile(psc.seccompProfile, csc.seccompProfile),
  };
  if (csc.capabilities) {
    sc.capabilities = {
      add_capabilities: csc.capabilities.add ?? [],
      drop_capabilities: csc.capabilities.drop ?? [],
    };
  }
  if (runAsUser !== undefined) sc.run_as_user = { value: runAsUser };
  if (runAsGroup !== undefined) sc.run_as_group = { value: runAsGroup };
  const se = csc.seLinuxOptions ?? psc.seLinuxOptions;
  if (se)
    sc.selinux_options = {
      user: se.user ?? '',
      role: se.role ?? '',
      type: se.type ?? '',
      level: se.level ?? '',
    };
  if (!privileged) {
    // procMount Unmasked: no masked or read-only /proc paths
    const unmasked = csc.procMount === 'Unmasked';
    sc.masked_paths = unmasked ? [] : [...DEFAULT_MASKED_PATHS];
    sc.readonly_paths = unmasked ? [] : [...DEFAULT_READONLY_PATHS];
  }
  return sc;
}

/** The pod's log directory, /var/log/pods/<namespace>_<name>_<uid>. */
export function podLogDirectory(pod: V1Pod, logRoot = LOG_ROOT): string {
  const md = pod.metadata ?? {};
  return `${logRoot}/${md.namespace}_${md.name}_${md.uid}`;
}

/** The container's log path relative to the pod's log directory: <container>/<attempt>.log */
export function containerLogPath(name: string, attempt: number): string {
  return `${name}/${attempt}.log`;
}

function anyPrivileged(pod: V1Pod): boolean {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.some((c) => c.securityContext?.privileged === true);
}

/** generatePodSandboxConfig */
export function sandboxConfig(pod: V1Pod, node: NodeInfo, attempt = 0): PodSandboxConfig {
  const md = pod.metadata ?? {};
  const spec = pod.spec!;
  const psc = spec.securityContext ?? {};
  const cfg: PodSandboxConfig = {
    metadata: { name: md.name, namespace: md.namespace, uid: md.uid, attempt },
    labels: {
      ...(md.labels ?? {}),
      [POD_NAME_LABEL]: md.name ?? '',
      [POD_NAMESPACE_LABEL]: md.namespace ?? '',
      [POD_UID_LABEL]: md.uid ?? '',
      [PLAY_LABEL]: 'true',
    },
    annotations: { ...(md.annotations ?? {}) },
    log_directory: podLogDirectory(pod, node.logRoot),
    dns_config: podDns(pod, node),
    port_mappings: portMappings(pod),
    linux: {
      cgroup_parent: podCgroupParent(podQos(pod), md.uid ?? ''),
      security_context: {
        namespace_options: namespaceOptions(pod),
        privileged: anyPrivileged(pod),
        supplemental_groups: podSupplementalGroups(pod),
        seccomp: seccompProfile(psc.seccompProfile),
        ...(psc.runAsUser !== undefined ? { run_as_user: { value: psc.runAsUser } } : {}),
        ...(psc.runAsGroup !== undefined ? { run_as_group: { value: psc.runAsGroup } } : {}),
      },
      sysctls: Object.fromEntries((psc.sysctls ?? []).map((s) => [s.name, s.value])),
      resources: sandboxResources(pod),
    },
  };
  if (!spec.hostNetwork) cfg.hostname = podHostname(pod);
  return cfg;
}

/** fnv-1a, 32 bits, hex: play's io.kubernetes.container.hash (kubelet hashes its Go struct dump) */
function fnv32a(s: string): string {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

/** newContainerAnnotations */
export function containerAnnotations(
  pod: V1Pod,
  c: V1Container,
  restartCount: number,
): Record<string, string> {
  const a: Record<string, string> = {
    'io.kubernetes.container.hash': fnv32a(JSON.stringify(c)),
    'io.kubernetes.container.restartCount': String(restartCount),
    'io.kubernetes.container.terminationMessagePath': c.terminationMessagePath ?? '',
    'io.kubernetes.container.terminationMessagePolicy': c.terminationMessagePolicy ?? '',
  };
  if (pod.metadata?.deletionGracePeriodSeconds !== undefined)
    a['io.kubernetes.pod.deletionGracePeriod'] = String(pod.metadata.deletionGracePeriodSeconds);
  if (pod.spec?.terminationGracePeriodSeconds !== undefined)
    a['io.kubernetes.pod.terminationGracePeriod'] = String(pod.spec.terminationGracePeriodSeconds);
  if (c.lifecycle?.preStop) a['io.kubernetes.container.preStopHandler'] = JSON.stringify(c.lifecycle.preStop);
  if (c.ports?.length) a['io.kubernetes.container.ports'] = JSON.stringify(c.ports);
  return a;
}

/** newContainerLabels */
export function containerLabels(pod: V1Pod, c: V1Container): Record<string, string> {
  const md = pod.metadata ?? {};
  return {
    [POD_NAME_LABEL]: md.name ?? '',
    [POD_NAMESPACE_LABEL]: md.namespace ?? '',
    [POD_UID_LABEL]: md.uid ?? '',
    [CONTAINER_NAME_LABEL]: c.name,
  };
}

const PROPAGATION: Record<string, Mount['propagation']> = {
  None: 'PROPAGATION_PRIVATE',
  HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
  Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

/** The host file kubelet mounts at terminationMessagePath, under the pod's directory. */
export function terminationLogPath(pod: V1Pod, node: NodeInfo, c: V1Container, attempt: number): string {
  return `${node.podsDir}/${pod.metadata?.uid}/containers/${c.name}/termination-log-${attempt}`;
}

/**
 * makeMounts for an image volume (KEP-4639): the image by the id its pull returned (by its
 * reference before the pull, as --dry-run shows it), `subPath` as `image_sub_path`. Image volumes
 * are read-only by definition: kubelet takes no `readOnly` (false is not refused) nor propagation
 * from the volumeMount; play sends `readonly: true` and private propagation, as the runtime mounts it.
 */
export function imageMount(containerPath: string, image: ImageVolume, subPath: string): Mount {
  return {
    container_path: containerPath,
    host_path: '',
    image: { image: image.imageRef ?? image.reference, user_specified_image: image.reference },
    image_sub_path: subPath,
    readonly: true,
    propagation: 'PROPAGATION_PRIVATE',
  };
}

/** makeMounts: the container's volumeMounts onto the volumes' host paths, plus the termination log. */
export function containerMounts(
  pod: V1Pod,
  c: V1Container,
  volumes: VolumePlan[],
  node: NodeInfo,
  attempt: number,
): Mount[] {
  const mounts: Mount[] = [];
  for (const vm of c.volumeMounts ?? []) {
    const v = volumes.find((x) => x.name === vm.name);
    if (!v)
      throw new Error(
        `container ${c.name}: volumeMount ${JSON.stringify(vm.name)} names no volume of the pod`,
      );
    if (vm.subPath && (vm.subPath.startsWith('/') || vm.subPath.split('/').includes('..')))
      throw new Error(`container ${c.name}: volumeMount ${vm.name}: subPath must be relative without '..'`);
    const propagation = PROPAGATION[vm.mountPropagation ?? 'None'];
    if (!propagation)
      throw new Error(`container ${c.name}: mountPropagation ${vm.mountPropagation} is unknown`);
    if (v.image) {
      mounts.push(imageMount(vm.mountPath, v.image, vm.subPath ?? ''));
      continue;
    }
    mounts.push({
      container_path: vm.mountPath,
      host_path: vm.subPath ? `${v.hostPath}/${vm.subPath}` : v.hostPath,
      readonly: (vm.readOnly ?? false) || v.readOnly,
      propagation,
    });
  }
  if (c.terminationMessagePath) {
    mounts.push({
      container_path: c.terminationMessagePath,
      host_path: terminationLogPath(pod, node, c, attempt),
      readonly: false,
      propagation: 'PROPAGATION_PRIVATE',
    });
  }
  return mounts;
}

/**
 * generateContainerConfig. `imageRef` is what the pull returned (kubelet creates containers from
 * the image id); `env` carries the pod IP, known once the sandbox runs.
 */
export function containerConfig(
  pod: V1Pod,
  c: V1Container,
  opts: { node: NodeInfo; env: EnvContext; volumes: VolumePlan[]; attempt: number; imageRef?: string },
): ContainerConfig {
  const envs = containerEnv(pod, c, opts.env);
  const { command, args } = expandCommand(c, envs);
  return {
    metadata: { name: c.name, attempt: opts.attempt },
    image: { image: opts.imageRef ?? c.image, user_specified_image: c.image },
    command,
    args,
    working_dir: c.workingDir ?? '',
    envs,
    mounts: containerMounts(pod, c, opts.volumes, opts.node, opts.attempt),
    labels: containerLabels(pod, c),
    annotations: containerAnnotations(pod, c, opts.attempt),
    log_path: containerLogPath(c.name, opts.attempt),
    stdin: c.stdin ?? false,
    stdin_once: c.stdinOnce ?? false,
    tty: c.tty ?? false,
    linux: {
      resources: containerResources(pod, c, opts.node.memoryCapacity),
      security_context: containerSecurityContext(pod, c),
    },
  };
}

/** runtimeClassName → runtime handler. Without an API server a RuntimeClass is its own handler name. */
export function runtimeHandler(pod: V1Pod): string {
  return pod.spec?.runtimeClassName ?? '';
}
