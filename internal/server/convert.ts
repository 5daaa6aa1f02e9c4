// Records → CRI messages, shared by the status and list handlers and by container events.
import type { Container, ContainerStatus, PodSandbox, PodSandboxStatus } from '../../api/generated';
import type { ContainerRecord } from '../container/types';
import type { SandboxRecord } from '../sandbox/types';
import { criState } from '../container/service';
import { signalToCri } from '../oci/signal';

export function sandboxState(r: SandboxRecord): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return r.state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

export function toPodSandbox(r: SandboxRecord): PodSandbox {
  return {
    id: r.id,
    metadata: r.config.metadata ?? undefined,
    state: sandboxState(r),
    created_at: r.createdAt,
    labels: r.config.labels,
    annotations: r.config.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

export function toPodSandboxStatus(r: SandboxRecord): PodSandboxStatus {
  const [ip, ...more] = r.state === 'ready' ? r.ips : [];
  return {
    id: r.id,
    metadata: r.config.metadata ?? undefined,
    state: sandboxState(r),
    created_at: r.createdAt,
    network: { ip: ip ?? '', additional_ips: more.map((x) => ({ ip: x })) },
    linux: { namespaces: { options: r.config.linux?.security_context?.namespace_options ?? undefined } },
    labels: r.config.labels,
    annotations: r.config.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

export function toContainer(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.podId,
    metadata: r.config.metadata ?? undefined,
    image: { image: r.config.image?.image ?? '', annotations: r.config.image?.annotations ?? {} },
    image_ref: r.imageRef,
    image_id: r.imageId,
    state: criState(r.state),
    created_at: r.createdAt,
    labels: r.config.labels,
    annotations: r.config.annotations,
  };
}

export function toContainerStatus(r: ContainerRecord): ContainerStatus {
  return {
    id: r.id,
    metadata: r.config.metadata ?? undefined,
    state: criState(r.state),
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    exit_code: r.exitCode,
    image: { image: r.config.image?.image ?? '', annotations: r.config.image?.annotations ?? {} },
    image_ref: r.imageRef,
    image_id: r.imageId,
    reason: r.reason,
    message: r.message,
    labels: r.config.labels,
    annotations: r.config.annotations,
    // an image volume is mounted read-only whatever was asked
    mounts: r.config.mounts.map((m) => (m.image?.image ? { ...m, readonly: true } : m)),
    log_path: r.logPath,
    resources: r.resources ? { linux: r.resources } : undefined,
    stop_signal: signalToCri(r.stopSignal || 'SIGTERM') as ContainerStatus['stop_signal'],
    user: {
      linux: {
        uid: String(r.user.uid),
        gid: String(r.user.gid),
        supplemental_groups: r.user.additionalGids.map(String),
      },
    },
  };
}
