// UpdatePodSandboxResources (in-place pod resize): the pod-level overhead and resources kubelet
// sends, checked the way container resources are (INVALID_ARGUMENT on a bad value, before anything
// is recorded) and kept in the sandbox record.
//
// What Berth applies: nothing to a cgroup. The pod-level cgroup is kubelet's (linux.cgroup_parent:
// kubelet creates and sizes it before it calls this RPC); a pod without one has its containers
// under Berth's shared parent, which is no pod's to size; the infra container's own cgroup holds only
// the pause process. So the update is validated, recorded (it survives a restart) and shown in
// PodSandboxStatus verbose info, and UpdateContainerResources keeps resizing each container. This is
// what containerd 2.x (store it in the sandbox status and an extension, hand it to NRI) and CRI-O
// (hand it to NRI) do; the proto says kubelet calls it after it reconfigured the pod-level cgroup.
import type { LinuxContainerResources__Output } from '../../api/generated';
import { invalidArgument, short } from '../errors';
import { buildResources } from '../oci/resources';

export interface PodResources {
  overhead?: LinuxContainerResources__Output;
  resources?: LinuxContainerResources__Output;
  /** ns since the epoch (CRI int64 string) of the last update */
  updatedAt: string;
}

/** Checks one LinuxContainerResources of the request; throws INVALID_ARGUMENT naming the field. */
export function checkPodResources(
  r: LinuxContainerResources__Output | null | undefined,
  field: string,
): void {
  if (!r) return;
  try {
    buildResources(r, { swapSupported: true, hugetlbSupported: true });
    const oom = Number(r.oom_score_adj ?? 0);
    if (!Number.isInteger(oom) || oom < -1000 || oom > 1000)
      throw invalidArgument(`oom_score_adj ${short(r.oom_score_adj)} is outside -1000..1000`);
  } catch (err) {
    if (err instanceof Error) err.message = `${field}.${err.message}`;
    throw err;
  }
}

/** The record's new pod resources: a side the request leaves unset keeps its last value. */
export function nextPodResources(
  old: PodResources | undefined,
  overhead: LinuxContainerResources__Output | null | undefined,
  resources: LinuxContainerResources__Output | null | undefined,
  now: string,
): PodResources {
  checkPodResources(overhead, 'overhead');
  checkPodResources(resources, 'resources');
  const out: PodResources = { updatedAt: now };
  const o = overhead ?? old?.overhead;
  const r = resources ?? old?.resources;
  if (o) out.overhead = o;
  if (r) out.resources = r;
  return out;
}
