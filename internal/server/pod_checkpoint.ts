// CheckpointPod (cri-api main line): one consistent checkpoint of a pod's selected containers, in the
// caller's empty output_path (format: internal/container/pod-checkpoint.ts). The request is checked
// first (INVALID_ARGUMENT / NOT_FOUND for bad input), then the pod's state and whether CRIU works
// here (FAILED_PRECONDITION quoting `criu check`, asked once per daemon), then every container is
// paused, checkpointed and resumed (ContainerService.checkpointPod).
import type { CheckpointPodRequest__Output, CheckpointPodResponse } from '../../api/generated';
import { checkCheckpointSelection } from '../container/pod-checkpoint';
import { checkOutputDir } from '../container/pod-checkpoint-io';
import { failedPrecondition, invalidArgument, short } from '../errors';
import type { ServerDeps } from './deps';
import type { RpcContext } from './rpc';
import { requireId } from './validate_config';

export function checkpointPod(deps: ServerDeps) {
  return async (req: CheckpointPodRequest__Output, ctx?: RpcContext): Promise<CheckpointPodResponse> => {
    const pod = deps.sandboxes.resolve(requireId(req.pod_sandbox_id, 'pod_sandbox_id'));
    const ids = checkCheckpointSelection(pod.id, req.container_ids ?? [], (id) =>
      deps.containers.resolve(id),
    );
    const keys = Object.keys(req.options ?? {});
    if (keys.length)
      throw invalidArgument(`options: Berth defines no checkpoint option (got ${short(keys[0])})`);
    await checkOutputDir(req.output_path);
    if (pod.state !== 'ready')
      throw failedPrecondition(
        `pod sandbox ${short(pod.id)} is ${pod.state}: only a ready pod can be checkpointed`,
      );
    await deps.containers.checkpointPod(pod, ids, req.output_path, {
      timeoutSec: 0,
      berthVersion: deps.version,
      signal: ctx?.signal,
    });
    deps.log.info('pod checkpointed', { id: pod.id, containers: ids, output: req.output_path });
    return {};
  };
}
