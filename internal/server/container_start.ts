// StartContainer: `runc start` of a created container; its exit is then watched.
import type { StartContainerRequest__Output, StartContainerResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function startContainer(deps: ServerDeps) {
  return async (req: StartContainerRequest__Output): Promise<StartContainerResponse> => {
    await deps.containers.start(requireId(req.container_id, 'container_id'));
    return {};
  };
}
