// RestorePod (cri-api main line): not implemented in Berth yet; it answers UNIMPLEMENTED so a kubelet
// knows the feature is absent (the README's CRI status table says so).
import type { RestorePodRequest__Output, RestorePodResponse } from '../../api/generated';
import { unimplemented } from '../errors';
import type { ServerDeps } from './deps';

export function restorePod(_deps: ServerDeps) {
  return async (_req: RestorePodRequest__Output): Promise<RestorePodResponse> => {
    throw unimplemented('Berth does not implement RestorePod yet');
  };
}
