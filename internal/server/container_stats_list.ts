// ListContainerStats: the running containers' stats, filtered by id, pod sandbox id and labels.
import type { ListContainerStatsRequest__Output, ListContainerStatsResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export function listContainerStats(deps: ServerDeps) {
  return async (req: ListContainerStatsRequest__Output): Promise<ListContainerStatsResponse> => {
    const f = req.filter;
    const labels = f?.label_selector && Object.keys(f.label_selector).length ? f.label_selector : undefined;
    return {
      stats: await deps.stats.listContainerStats({
        id: f?.id || undefined,
        podId: f?.pod_sandbox_id || undefined,
        labels,
      }),
    };
  };
}
