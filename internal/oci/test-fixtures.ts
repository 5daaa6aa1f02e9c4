// Builders of CRI `__Output` values (every field present with its proto default, as grpc-js hands
// them to the handlers) and of spec-builder inputs, for the oci unit and integration tests.
import type {
  ContainerConfig__Output,
  LinuxContainerResources__Output,
  LinuxContainerSecurityContext__Output,
  LinuxSandboxSecurityContext__Output,
  Mount__Output,
  NamespaceOption__Output,
  PodSandboxConfig__Output,
} from '../../api/generated';
import type { ImageConfig } from '../image/types';
import type { ContainerSpecInput, SandboxSpecInput } from './spec';

export function namespaceOptions(o: Partial<NamespaceOption__Output> = {}): NamespaceOption__Output {
  return { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null, ...o };
}

export function containerSecurity(
  o: Partial<LinuxContainerSecurityContext__Output> = {},
): LinuxContainerSecurityContext__Output {
  return {
    capabilities: null,
    privileged: false,
    namespace_options: namespaceOptions(),
    selinux_options: null,
    run_as_user: null,
    run_as_username: '',
    readonly_rootfs: false,
    supplemental_groups: [],
    apparmor_profile: '',
    seccomp_profile_path: '',
    no_new_privs: false,
    run_as_group: null,
    masked_paths: [],
    readonly_paths: [],
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...o,
  };
}

export function sandboxSecurity(
  o: Partial<LinuxSandboxSecurityContext__Output> = {},
): LinuxSandboxSecurityContext__Output {
  return {
    namespace_options: namespaceOptions(),
    selinux_options: null,
    run_as_user: null,
    readonly_rootfs: false,
    supplemental_groups: [],
    privileged: false,
    seccomp_profile_path: '',
    run_as_group: null,
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...o,
  };
}

export function resources(o: Partial<LinuxContainerResources__Output> = {}): LinuxContainerResources__Output {
  return {
    cpu_period: '0',
    cpu_quota: '0',
    cpu_shares: '0',
    memory_limit_in_bytes: '0',
    oom_score_adj: '0',
    cpuset_cpus: '',
    cpuset_mems: '',
    hugepage_limits: [],
    unified: {},
    memory_swap_limit_in_bytes: '0',
    ...o,
  };
}

export function mount(
  o: Partial<Mount__Output> & { container_path: string; host_path: string },
): Mount__Output {
  return {
    readonly: false,
    selinux_relabel: false,
    propagation: 'PROPAGATION_PRIVATE',
    uidMappings: [],
    gidMappings: [],
    recursive_read_only: false,
    image: null,
    image_sub_path: '',
    mount_options: [],
    ...o,
  };
}

export function containerConfig(
  o: Partial<ContainerConfig__Output> = {},
  sc: Partial<LinuxContainerSecurityContext__Output> = {},
  res?: Partial<LinuxContainerResources__Output>,
): ContainerConfig__Output {
  return {
    metadata: { name: 'app', attempt: 0 },
    image: {
      image: 'busybox',
      annotations: {},
      user_specified_image: '',
      runtime_handler: '',
      image_ref: '',
    },
    command: [],
    args: [],
    working_dir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    log_path: '',
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: { resources: res ? resources(res) : null, security_context: containerSecurity(sc) },
    windows: null,
    CDI_devices: [],
    stop_signal: 'SIGNAL_RUNTIME_DEFAULT',
    ...o,
  };
}

export function podConfig(
  o: Partial<PodSandboxConfig__Output> = {},
  sc: Partial<LinuxSandboxSecurityContext__Output> = {},
  sysctls: Record<string, string> = {},
): PodSandboxConfig__Output {
  return {
    metadata: { name: 'pod', uid: 'uid-1', namespace: 'default', attempt: 0 },
    hostname: 'pod-host',
    log_directory: '/var/log/pods/x',
    dns_config: null,
    port_mappings: [],
    labels: {},
    annotations: {},
    linux: {
      cgroup_parent: '',
      security_context: sandboxSecurity(sc),
      sysctls,
      overhead: null,
      resources: null,
    },
    windows: null,
    ...o,
  };
}

export const busyboxImage: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
};

export function containerInput(o: Partial<ContainerSpecInput> = {}): ContainerSpecInput {
  return {
    id: 'c1',
    sandboxId: 's1',
    config: containerConfig(),
    sandboxConfig: podConfig(),
    image: busyboxImage,
    imageName: 'docker.io/library/busybox:latest',
    rootfs: '/run/berth/c1/rootfs',
    user: { uid: 0, gid: 0, additionalGids: [0], home: '/root', username: 'root' },
    namespaces: {
      network: '/run/berth/netns/s1',
      ipc: '/proc/100/ns/ipc',
      uts: '/proc/100/ns/uts',
      pid: '/proc/100/ns/pid',
    },
    podFiles: {
      hostname: '/pod/hostname',
      hosts: '/pod/hosts',
      resolvConf: '/pod/resolv.conf',
      shm: '/pod/shm',
    },
    hostname: 'pod-host',
    cgroupsPath: '/berth/berth-c1',
    host: {
      devices: [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 }],
      ownOomScoreAdj: 0,
      restrictOomScoreAdj: true,
      appArmorAvailable: false,
      arch: 'amd64',
    },
    features: { rro: true },
    ...o,
  };
}

export function sandboxInput(o: Partial<SandboxSpecInput> = {}): SandboxSpecInput {
  return {
    id: 's1',
    config: podConfig(),
    image: { config: { Entrypoint: ['/pause'] } },
    imageName: 'registry.k8s.io/pause:3.10',
    rootfs: '/run/berth/s1/rootfs',
    user: { uid: 0, gid: 0, additionalGids: [0], home: '/', username: undefined },
    netnsPath: '/run/berth/netns/s1',
    podFiles: { shm: '/pod/shm' },
    cgroupsPath: '/berth/berth-s1',
    host: {
      devices: [],
      ownOomScoreAdj: 0,
      restrictOomScoreAdj: true,
      appArmorAvailable: false,
      arch: 'amd64',
    },
    features: { rro: true },
    ...o,
  };
}
