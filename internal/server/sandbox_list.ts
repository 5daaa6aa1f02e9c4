// ListPodSandbox with kubelet's filters: id (a prefix also matches), state, label selector.
import type { ListPodSandboxRequest__Output, ListPodSandboxResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toPodSandbox } from './convert';

export function listPodSandbox(deps: ServerDeps) {
  return async (req: ListPodSandboxRequest__Output): Promise<ListPodSandboxResponse> => {
    const f = req.filter;
    const recs = deps.sandboxes.list({
      id: f?.id || undefined,
      state: f?.state?.state,
      labels: f?.label_selector,
    });
    return { items: recs.map(toPodSandbox) };
  };
}
