// ContainerStats: one container's CPU, memory and writable layer (cgroup figures only while it runs).
import type { ContainerStatsRequest__Output, ContainerStatsResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function containerStats(deps: ServerDeps) {
  return async (req: ContainerStatsRequest__Output): Promise<ContainerStatsResponse> => ({
    stats: await deps.stats.containerStats(requireId(req.container_id, 'container_id')),
  });
}
