// UpdateRuntimeConfig: kubelet hands over the node's pod CIDR; it is persisted (a restarted berthd
// keeps it) and given to CNI as the IPAM range capability.
import type { UpdateRuntimeConfigRequest__Output, UpdateRuntimeConfigResponse } from '../../api/generated';
import { failedPrecondition } from '../errors';
import type { ServerDeps } from './deps';

export function updateRuntimeConfig(deps: ServerDeps) {
  return async (req: UpdateRuntimeConfigRequest__Output): Promise<UpdateRuntimeConfigResponse> => {
    const cidr = req.runtime_config?.network_config?.pod_cidr;
    // kubelet sends an empty config at times: nothing to change then.
    if (cidr === undefined || cidr === '') return {};
    if (!deps.podCidr) throw failedPrecondition('pod CIDR hand-off is not wired into this berthd');
    await deps.podCidr.set(cidr);
    deps.log.info('pod CIDR updated', { podCidr: cidr });
    return {};
  };
}
