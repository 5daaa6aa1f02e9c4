// StopPodSandbox: kill the pod's containers and infra container, tear down its network. The
// records stay (kubelet still asks for their status). Stopping a pod that is gone succeeds.
import type { StopPodSandboxRequest__Output, StopPodSandboxResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function stopPodSandbox(deps: ServerDeps) {
  return async (req: StopPodSandboxRequest__Output): Promise<StopPodSandboxResponse> => {
    await deps.sandboxes.stop(requireId(req.pod_sandbox_id, 'pod_sandbox_id'));
    return {};
  };
}
