// StreamPodSandboxes: ListPodSandbox's items and filters as a stream of size-bounded batches.
import type { PodSandbox, StreamPodSandboxesRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listPodSandbox } from './sandbox_list';
import { streamList } from './stream_list';

export function streamPodSandboxes(deps: ServerDeps) {
  const list = listPodSandbox(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamPodSandboxes',
    list: async (req: StreamPodSandboxesRequest__Output) => (await list({ filter: req.filter })).items ?? [],
    itemType: 'PodSandbox',
    wrap: (pod_sandboxes: PodSandbox[]) => ({ pod_sandboxes }),
  });
}
