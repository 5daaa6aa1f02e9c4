// RestorePod (cri-api main line): checks the checkpoint directory (INVALID_ARGUMENT / NOT_FOUND),
// the handler and the request against it (the restore plan of internal/container/pod-checkpoint.ts:
// sandbox config, then the containers in checkpoint order, matched by name), then whether CRIU
// works here (FAILED_PRECONDITION quoting `criu check`). Recreating containers from CRIU images in
// the CREATED state (a `runc restore` deferred to StartContainer) is not built yet: where CRIU works
// the checked request answers UNIMPLEMENTED, so no sandbox or container is ever half made.
import type { RestorePodRequest__Output, RestorePodResponse } from '../../api/generated';
import { planRestore } from '../container/pod-checkpoint';
import { readPodCheckpoint } from '../container/pod-checkpoint-io';
import { failedPrecondition, short, unimplemented } from '../errors';
import type { ServerDeps } from './deps';

export function restorePod(deps: ServerDeps) {
  return async (req: RestorePodRequest__Output): Promise<RestorePodResponse> => {
    const ckpt = await readPodCheckpoint(req.checkpoint_path);
    const handler = await deps.containers.restoreHandler(req.runtime_handler ?? '');
    const plan = planRestore(ckpt.manifest, ckpt.containerConfigs, {
      config: req.config,
      runtimeHandler: handler.name,
      options: req.options ?? {},
      containerConfigs: req.container_configs ?? [],
    });
    if (handler.problem)
      throw failedPrecondition(`cannot restore pod ${short(ckpt.manifest.pod.name)}: ${handler.problem}`);
    throw unimplemented(
      `RestorePod: the checkpoint and request are valid (${plan.containers.length} containers), but Berth cannot yet create containers from CRIU images`,
    );
  };
}
