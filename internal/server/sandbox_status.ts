// PodSandboxStatus: state, IPs, namespaces, labels; with verbose, the pid, netns, config and
// the infra container's OCI spec path as JSON in info["info"].
import type { PodSandboxStatusRequest__Output, PodSandboxStatusResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toContainerStatus, toPodSandboxStatus } from './convert';
import { nowNanos } from './image_fs_info';
import { requireId } from './validate_config';

export function podSandboxStatus(deps: ServerDeps) {
  return async (req: PodSandboxStatusRequest__Output): Promise<PodSandboxStatusResponse> => {
    const rec = deps.sandboxes.resolve(requireId(req.pod_sandbox_id, 'pod_sandbox_id'));
    const res: PodSandboxStatusResponse = {
      status: toPodSandboxStatus(rec),
      info: {},
      containers_statuses: deps.containers.list({ podId: rec.id }).map(toContainerStatus),
      timestamp: nowNanos(),
    };
    if (req.verbose) {
      res.info = {
        info: JSON.stringify({
          pid: rec.pid,
          netns: rec.netnsPath ?? '',
          ips: rec.ips,
          runtimeHandler: rec.runtimeHandler,
          pauseImageId: rec.pauseImageId,
          bundle: rec.bundle,
          podDir: rec.podDir,
          config: rec.config,
          // UpdatePodSandboxResources' last overhead and resources (absent until the pod is resized)
          podResources: rec.podResources,
        }),
      };
    }
    return res;
  };
}
