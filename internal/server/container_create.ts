// CreateContainer: validate, then the container service builds the snapshot, the OCI spec and
// the bundle, and has conmon run `runc create`. Every step is undone if a later one fails.
import type { CreateContainerRequest__Output, CreateContainerResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireId, validateContainerConfig } from './validate_config';
import { checkResources } from '../oci/resources';

export function createContainer(deps: ServerDeps) {
  return async (req: CreateContainerRequest__Output): Promise<CreateContainerResponse> => {
    const podId = requireId(req.pod_sandbox_id, 'pod_sandbox_id');
    const config = validateContainerConfig(req.config);
    checkResources(config.linux?.resources);
    const id = await deps.containers.create(podId, config, req.sandbox_config);
    return { container_id: id };
  };
}
