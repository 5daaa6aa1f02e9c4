// StreamPodSandboxMetrics: ListPodSandboxMetrics' items as a stream of size-bounded batches.
import type { PodSandboxMetrics, StreamPodSandboxMetricsRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listPodSandboxMetrics } from './sandbox_metrics_list';
import { streamList } from './stream_list';

export function streamPodSandboxMetrics(deps: ServerDeps) {
  const list = listPodSandboxMetrics(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamPodSandboxMetrics',
    list: async (_req: StreamPodSandboxMetricsRequest__Output) => (await list({})).pod_metrics ?? [],
    itemType: 'PodSandboxMetrics',
    wrap: (pod_sandbox_metrics: PodSandboxMetrics[]) => ({ pod_sandbox_metrics }),
  });
}
