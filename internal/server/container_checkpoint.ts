// CheckpointContainer: a CRIU checkpoint of a running container, archived at `location` with its
// spec, record and writable-layer changes; the container keeps running (forensic checkpointing).
import type { CheckpointContainerRequest__Output, CheckpointContainerResponse } from '../../api/generated';
import { invalidArgument } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function checkpointContainer(deps: ServerDeps) {
  return async (req: CheckpointContainerRequest__Output): Promise<CheckpointContainerResponse> => {
    const id = requireId(req.container_id, 'container_id');
    const timeout = Number(req.timeout || 0);
    if (!Number.isFinite(timeout) || timeout < 0)
      throw invalidArgument(`timeout ${req.timeout} must be >= 0`);
    const entries = await deps.containers.checkpoint(id, req.location, timeout);
    deps.log.info('container checkpointed', { id, location: req.location, entries });
    return {};
  };
}
