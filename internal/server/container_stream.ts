// StreamContainers: ListContainers' items and filters as a stream of size-bounded batches.
import type { Container, StreamContainersRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listContainers } from './container_list';
import { streamList } from './stream_list';

export function streamContainers(deps: ServerDeps) {
  const list = listContainers(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamContainers',
    list: async (req: StreamContainersRequest__Output) =>
      (await list({ filter: req.filter })).containers ?? [],
    itemType: 'Container',
    wrap: (containers: Container[]) => ({ containers }),
  });
}
