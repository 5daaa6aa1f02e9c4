// ListPodSandboxMetrics: per ready pod, its network metrics and its running containers' metrics.
import type {
  ListPodSandboxMetricsRequest__Output,
  ListPodSandboxMetricsResponse,
} from '../../api/generated';
import type { ServerDeps } from './deps';

export function listPodSandboxMetrics(deps: ServerDeps) {
  return async (_req: ListPodSandboxMetricsRequest__Output): Promise<ListPodSandboxMetricsResponse> => ({
    pod_metrics: await deps.stats.podMetrics(),
  });
}
