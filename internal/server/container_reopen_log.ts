// ReopenContainerLog: ask conmon to reopen the log file (kubelet rotated it).
import type { ReopenContainerLogRequest__Output, ReopenContainerLogResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function reopenContainerLog(deps: ServerDeps) {
  return async (req: ReopenContainerLogRequest__Output): Promise<ReopenContainerLogResponse> => {
    await deps.containers.reopenLog(requireId(req.container_id, 'container_id'));
    return {};
  };
}
