// The persisted record of a container. Written in state "creating" before CreateContainer's
// first side effect, so an interrupted create is rolled back at the next start; rewritten in state
// "removing" when RemoveContainer answers, so a removal interrupted in the background is finished
// at the next start.
import type { ContainerConfig__Output, LinuxContainerResources__Output } from '../../api/generated';
import type { ImageVolume } from './image-volumes';

export type ContainerState = 'creating' | 'created' | 'running' | 'exited' | 'removing';

export interface ContainerRecord {
  version: 1;
  id: string;
  podId: string;
  state: ContainerState;
  config: ContainerConfig__Output;
  /** the image's id (config digest) */
  imageId: string;
  /** a repo digest of the image when known, else its id: CRI image_ref */
  imageRef: string;
  runtimeHandler: string;
  bundle: string;
  /** absolute log path ('' when the pod or container gave none) */
  logPath: string;
  /** the effective stop signal (name, e.g. SIGTERM): ContainerConfig.stop_signal, else the image's StopSignal, else SIGTERM */
  stopSignal: string;
  /** the user the created process really got (/proc/<pid>/status), for ContainerStatus.user */
  user: { uid: number; gid: number; additionalGids: number[] };
  /** nanoseconds since the epoch as decimal strings; '0' when not yet */
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  pid: number;
  exitCode: number;
  reason: string;
  message: string;
  /** resources as last applied (CreateContainer, then UpdateContainerResources) */
  resources?: LinuxContainerResources__Output | null;
  /** image volumes (Mount.image), written with the "creating" record before any is mounted */
  imageVolumes?: ImageVolume[];
  /**
   * A container RestorePod made from a checkpoint: CREATED with no runc container yet; its
   * StartContainer restores the process from these CRIU images (conmon --restore).
   */
  restore?: { imagePath: string };
}

export function isContainerRecord(v: unknown): v is ContainerRecord {
  const r = v as ContainerRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.version === 1 &&
    typeof r.id === 'string' &&
    typeof r.podId === 'string' &&
    ['creating', 'created', 'running', 'exited', 'removing'].includes(r.state) &&
    typeof r.config === 'object' &&
    r.config !== null
  );
}

export function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

export function dateToNs(d: Date): string {
  return (BigInt(d.getTime()) * 1_000_000n).toString();
}
