// UpdateContainerResources: new CPU, memory, cpuset, hugepage and unified limits for a created or
// running container, applied live (`runc update`) and shown by ContainerStatus.resources.
import type {
  UpdateContainerResourcesRequest__Output,
  UpdateContainerResourcesResponse,
} from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function updateContainerResources(deps: ServerDeps) {
  return async (req: UpdateContainerResourcesRequest__Output): Promise<UpdateContainerResourcesResponse> => {
    const id = requireId(req.container_id, 'container_id');
    // Windows resources mean nothing here; with no Linux resources there is nothing to change.
    if (!req.linux) {
      deps.containers.resolve(id);
      return {};
    }
    await deps.containers.updateResources(id, req.linux);
    return {};
  };
}
