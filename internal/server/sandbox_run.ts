// RunPodSandbox: validate the pod config, then the sandbox service does the work (network
// namespace, CNI ADD, pod files, infra container) and rolls back on any failure.
import type { RunPodSandboxRequest__Output, RunPodSandboxResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { validatePodConfig } from './validate_config';

export function runPodSandbox(deps: ServerDeps) {
  return async (req: RunPodSandboxRequest__Output): Promise<RunPodSandboxResponse> => {
    const config = validatePodConfig(req.config);
    const id = await deps.sandboxes.run(config, req.runtime_handler);
    return { pod_sandbox_id: id };
  };
}
