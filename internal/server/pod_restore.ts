// RestorePod (cri-api main line): checks the checkpoint directory (INVALID_ARGUMENT / NOT_FOUND),
// the handler and the request against it (the restore plan of internal/container/pod-checkpoint.ts:
// sandbox config, then the containers in checkpoint order, matched by name) and the configs as
// RunPodSandbox / CreateContainer check them, then whether CRIU works here (FAILED_PRECONDITION
// quoting `criu check`). Then, as CRI-O restores: RunPodSandbox with the request's config, and each
// container created from its checkpoint archive with the request's config (rootfs diff applied,
// CRIU images kept in its bundle), CREATED without a process: its StartContainer runs
// `conmon --restore` (runc restore). Any failure removes the sandbox and every container made
// (internal/container/pod-restore-run.ts). The checkpoint directory is only read.
import * as path from 'node:path';
import type { RestorePodRequest__Output, RestorePodResponse } from '../../api/generated';
import { planRestore } from '../container/pod-checkpoint';
import { readPodCheckpoint } from '../container/pod-checkpoint-io';
import { runPodRestore } from '../container/pod-restore-run';
import { failedPrecondition, short } from '../errors';
import type { ServerDeps } from './deps';
import type { RpcContext } from './rpc';
import { checkResources } from '../oci/resources';
import { validateContainerConfig, validatePodConfig } from './validate_config';

export function restorePod(deps: ServerDeps) {
  return async (req: RestorePodRequest__Output, ctx?: RpcContext): Promise<RestorePodResponse> => {
    const ckpt = await readPodCheckpoint(req.checkpoint_path);
    const handler = await deps.containers.restoreHandler(req.runtime_handler ?? '');
    const plan = planRestore(ckpt.manifest, ckpt.containerConfigs, {
      config: req.config,
      runtimeHandler: handler.name,
      options: req.options ?? {},
      containerConfigs: req.container_configs ?? [],
    });
    validatePodConfig(plan.sandbox.config);
    for (const step of plan.containers) {
      try {
        validateContainerConfig(step.config);
        checkResources(step.config.linux?.resources);
      } catch (err) {
        if (err instanceof Error) err.message = `container_configs[${short(step.name)}]: ${err.message}`;
        throw err;
      }
    }
    if (handler.problem)
      throw failedPrecondition(`cannot restore pod ${short(ckpt.manifest.pod.name)}: ${handler.problem}`);
    const done = await runPodRestore(
      plan,
      {
        runSandbox: (s) => deps.sandboxes.run(s.config, s.runtimeHandler),
        createContainer: (podId, step) =>
          deps.containers.create(podId, step.config, plan.sandbox.config, path.join(ckpt.dir, step.archive)),
        removeContainer: (id) => deps.containers.remove(id),
        removeSandbox: (podId) => deps.sandboxes.remove(podId),
      },
      ctx?.signal,
    );
    deps.log.info('pod restored (containers created; StartContainer restores each process)', {
      id: done.podId,
      checkpoint: ckpt.dir,
      containers: done.containers,
    });
    return {
      pod_sandbox_id: done.podId,
      restored_containers: done.containers.map((c) => ({ name: c.name, container_id: c.id })),
    };
  };
}
