// ContainerStatus: every field kubelet reads; with verbose, the pid and the OCI spec. All from
// memory: the record, and the spec the container service keeps (no bundle read per call).
import type { ContainerStatusRequest__Output, ContainerStatusResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toContainerStatus } from './convert';
import { requireId } from './validate_config';

export function containerStatus(deps: ServerDeps) {
  return async (req: ContainerStatusRequest__Output): Promise<ContainerStatusResponse> => {
    const rec = deps.containers.resolve(requireId(req.container_id, 'container_id'));
    const res: ContainerStatusResponse = { status: toContainerStatus(rec), info: {} };
    if (req.verbose) {
      const spec = deps.containers.spec(rec.id);
      res.info = {
        info: JSON.stringify({
          pid: rec.pid,
          sandboxID: rec.podId,
          runtimeHandler: rec.runtimeHandler,
          bundle: rec.bundle,
          user: rec.user,
          runtimeSpec: spec,
          config: rec.config,
          ...(rec.imageVolumes?.length ? { imageVolumes: rec.imageVolumes } : {}),
        }),
      };
    }
    return res;
  };
}
