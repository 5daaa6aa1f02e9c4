// StopContainer: the image's stop signal, then SIGKILL after `timeout` seconds (0: at once).
// Idempotent: an unknown container is already stopped.
import type { StopContainerRequest__Output, StopContainerResponse } from '../../api/generated';
import { Status, invalidArgument, isBerthError } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function stopContainer(deps: ServerDeps) {
  return async (req: StopContainerRequest__Output): Promise<StopContainerResponse> => {
    const timeout = Number(req.timeout);
    if (!Number.isFinite(timeout) || timeout < 0)
      throw invalidArgument(`timeout ${req.timeout} must be >= 0`);
    try {
      await deps.containers.stop(requireId(req.container_id, 'container_id'), timeout);
    } catch (err) {
      // CRI: stopping a container that is already gone (never existed, or removed) succeeds, as
      // kubelet retries stops after its own restarts; containerd and CRI-O answer the same.
      if (isBerthError(err, Status.NOT_FOUND)) return {};
      throw err;
    }
    return {};
  };
}
