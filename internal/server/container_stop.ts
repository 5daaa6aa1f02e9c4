// StopContainer: the image's stop signal, then SIGKILL after `timeout` seconds (0: at once).
import type { StopContainerRequest__Output, StopContainerResponse } from '../../api/generated';
import { invalidArgument } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function stopContainer(deps: ServerDeps) {
  return async (req: StopContainerRequest__Output): Promise<StopContainerResponse> => {
    const timeout = Number(req.timeout);
    if (!Number.isFinite(timeout) || timeout < 0)
      throw invalidArgument(`timeout ${req.timeout} must be >= 0`);
    await deps.containers.stop(requireId(req.container_id, 'container_id'), timeout);
    return {};
  };
}
