// ListPodSandboxStats: the ready pods' stats, filtered by id and labels.
import type { ListPodSandboxStatsRequest__Output, ListPodSandboxStatsResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export function listPodSandboxStats(deps: ServerDeps) {
  return async (req: ListPodSandboxStatsRequest__Output): Promise<ListPodSandboxStatsResponse> => {
    const f = req.filter;
    const labels = f?.label_selector && Object.keys(f.label_selector).length ? f.label_selector : undefined;
    return { stats: await deps.stats.listPodStats({ id: f?.id || undefined, labels }) };
  };
}
