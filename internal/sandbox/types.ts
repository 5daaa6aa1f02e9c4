// The persisted record of a pod sandbox. It is written before the first side effect of
// RunPodSandbox (state "creating"), so a crash midway is rolled back at the next start.
import type { PodSandboxConfig__Output } from '../../api/generated';
import { modeOf } from '../oci/spec';
import type { IpcUtsPaths } from './ipc-uts';
import type { PodResources } from './resources';

// "removing": RemovePodSandbox answered and durably marked the record (RecordStore.markRemoving);
// its cleanup runs in the background and a restart finishes it. Never in the service's map.
export type SandboxState = 'creating' | 'ready' | 'notready' | 'removing';

export interface SandboxRecord {
  version: 1;
  id: string;
  state: SandboxState;
  config: PodSandboxConfig__Output;
  runtimeHandler: string;
  /** nanoseconds since the epoch, as a decimal string (CRI int64) */
  createdAt: string;
  /** the infra (pause) container's image id ('' without one) */
  pauseImageId: string;
  /**
   * true: the pod has no infra container (runtime.drop_infra_ctr): its IPC and UTS namespaces are
   * the pins in `ipcUts`, and `pid` stays 0. Absent (records before it, or an infra pod): one.
   */
  dropInfra?: boolean;
  /** the pinned IPC and UTS namespaces of a pod without an infra container (host ones absent) */
  ipcUts?: IpcUtsPaths;
  /** hostname, hosts, resolv.conf, shm */
  podDir: string;
  /** the infra container's OCI bundle */
  bundle: string;
  /** pinned network namespace; absent with host network */
  netnsPath?: string;
  /** pinned user namespace of a pod with userns_options mode POD (its netns lives inside it) */
  usernsPath?: string;
  ips: string[];
  /** the infra container's host pid; 0 when it is not running, or there is none */
  pid: number;
  /** CNI ADD done and not yet torn down */
  networkUp: boolean;
  /** a teardown step failed; retried in the background and at start */
  cleanupPending?: string[];
  /** pod-level overhead and resources from UpdatePodSandboxResources (see ./resources.ts) */
  podResources?: PodResources;
}

export function isSandboxRecord(v: unknown): v is SandboxRecord {
  const r = v as SandboxRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.version === 1 &&
    typeof r.id === 'string' &&
    ['creating', 'ready', 'notready', 'removing'].includes(r.state) &&
    typeof r.config === 'object' &&
    r.config !== null &&
    Array.isArray(r.ips)
  );
}

export function hostNetwork(cfg: PodSandboxConfig__Output): boolean {
  return cfg.linux?.security_context?.namespace_options?.network === 'NODE';
}

/**
 * Whether a pod can live in its ready state: a running infra container, or (without one) nothing
 * more than its record says (its pins are checked at start, and lost pins make it notready).
 */
export function podReady(rec: SandboxRecord): boolean {
  return rec.state === 'ready' && (rec.dropInfra === true || rec.pid > 0);
}

/**
 * Whether the pod needs an infra container: only a process can hold a PID namespace shared by the
 * pod (pid mode POD, also what an absent namespace_options means: POD is the enum's zero value),
 * and a pod with its own user namespace keeps one too (its namespaces must be made inside it).
 */
export function needsInfra(cfg: PodSandboxConfig__Output, userns: boolean, dropInfra: boolean): boolean {
  return !dropInfra || userns || modeOf(cfg.linux?.security_context?.namespace_options, 'pid') === 'POD';
}

export function hostIpc(cfg: PodSandboxConfig__Output): boolean {
  return cfg.linux?.security_context?.namespace_options?.ipc === 'NODE';
}

/** kubelet's uniqueness key for a sandbox: name, namespace, uid and attempt. */
export function sandboxNameKey(cfg: PodSandboxConfig__Output): string {
  const m = cfg.metadata!;
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}
