// UpdatePodSandboxResources (cri-api main line): not implemented in Berth yet; it answers UNIMPLEMENTED so a kubelet
// knows the feature is absent (the README's CRI status table says so).
import type {
  UpdatePodSandboxResourcesRequest__Output,
  UpdatePodSandboxResourcesResponse,
} from '../../api/generated';
import { unimplemented } from '../errors';
import type { ServerDeps } from './deps';

export function updatePodSandboxResources(_deps: ServerDeps) {
  return async (
    _req: UpdatePodSandboxResourcesRequest__Output,
  ): Promise<UpdatePodSandboxResourcesResponse> => {
    throw unimplemented(
      'Berth does not implement UpdatePodSandboxResources yet (in-place pod resize); UpdateContainerResources resizes each container',
    );
  };
}
