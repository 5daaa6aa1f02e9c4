// ListContainers with kubelet's filters: id (prefix), state, pod sandbox id, label selector.
import type { ListContainersRequest__Output, ListContainersResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toContainer } from './convert';

export function listContainers(deps: ServerDeps) {
  return async (req: ListContainersRequest__Output): Promise<ListContainersResponse> => {
    const f = req.filter;
    const recs = deps.containers.list({
      id: f?.id || undefined,
      podId: f?.pod_sandbox_id || undefined,
      state: f?.state?.state,
      labels: f?.label_selector,
    });
    return { containers: recs.map(toContainer) };
  };
}
