// StreamContainerStats: ListContainerStats' items and filters as a stream of size-bounded batches.
import type { ContainerStats, StreamContainerStatsRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listContainerStats } from './container_stats_list';
import { streamList } from './stream_list';

export function streamContainerStats(deps: ServerDeps) {
  const list = listContainerStats(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamContainerStats',
    list: async (req: StreamContainerStatsRequest__Output) =>
      (await list({ filter: req.filter })).stats ?? [],
    itemType: 'ContainerStats',
    wrap: (container_stats: ContainerStats[]) => ({ container_stats }),
  });
}
