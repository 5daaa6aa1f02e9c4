// StreamPodSandboxStats: ListPodSandboxStats' items and filters as a stream of size-bounded batches.
import type { PodSandboxStats, StreamPodSandboxStatsRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listPodSandboxStats } from './sandbox_stats_list';
import { streamList } from './stream_list';

export function streamPodSandboxStats(deps: ServerDeps) {
  const list = listPodSandboxStats(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamPodSandboxStats',
    list: async (req: StreamPodSandboxStatsRequest__Output) =>
      (await list({ filter: req.filter })).stats ?? [],
    itemType: 'PodSandboxStats',
    wrap: (pod_sandbox_stats: PodSandboxStats[]) => ({ pod_sandbox_stats }),
  });
}
