// RemovePodSandbox: stop if needed, then remove the pod's containers and every trace of the pod.
// Idempotent: removing a pod that is gone succeeds.
import type { RemovePodSandboxRequest__Output, RemovePodSandboxResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function removePodSandbox(deps: ServerDeps) {
  return async (req: RemovePodSandboxRequest__Output): Promise<RemovePodSandboxResponse> => {
    const id = requireId(req.pod_sandbox_id, 'pod_sandbox_id');
    await deps.sandboxes.stop(id);
    await deps.sandboxes.remove(id);
    return {};
  };
}
