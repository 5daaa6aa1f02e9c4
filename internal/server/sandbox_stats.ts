// PodSandboxStats: one pod's cgroup, network and process figures with its containers' stats.
import type { PodSandboxStatsRequest__Output, PodSandboxStatsResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function podSandboxStats(deps: ServerDeps) {
  return async (req: PodSandboxStatsRequest__Output): Promise<PodSandboxStatsResponse> => ({
    stats: await deps.stats.podStats(requireId(req.pod_sandbox_id, 'pod_sandbox_id')),
  });
}
