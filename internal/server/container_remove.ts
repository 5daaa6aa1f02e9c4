// RemoveContainer: a running container is killed first (CRI: "forcibly removed"); removing one
// that is gone succeeds.
import type { RemoveContainerRequest__Output, RemoveContainerResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function removeContainer(deps: ServerDeps) {
  return async (req: RemoveContainerRequest__Output): Promise<RemoveContainerResponse> => {
    await deps.containers.remove(requireId(req.container_id, 'container_id'));
    return {};
  };
}
