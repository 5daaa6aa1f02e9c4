// UpdatePodSandboxResources (in-place pod resize): validates and records the pod's new overhead and
// resources; PodSandboxStatus verbose info shows them. No cgroup is written: the pod-level cgroup
// is kubelet's (see internal/sandbox/resources.ts).
import type {
  UpdatePodSandboxResourcesRequest__Output,
  UpdatePodSandboxResourcesResponse,
} from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function updatePodSandboxResources(deps: ServerDeps) {
  return async (
    req: UpdatePodSandboxResourcesRequest__Output,
  ): Promise<UpdatePodSandboxResourcesResponse> => {
    const id = requireId(req.pod_sandbox_id, 'pod_sandbox_id');
    await deps.sandboxes.updateResources(id, req.overhead, req.resources);
    return {};
  };
}
