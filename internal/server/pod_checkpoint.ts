// CheckpointPod (cri-api main line): not implemented in Berth yet; it answers UNIMPLEMENTED so a kubelet
// knows the feature is absent (the README's CRI status table says so).
import type { CheckpointPodRequest__Output, CheckpointPodResponse } from '../../api/generated';
import { unimplemented } from '../errors';
import type { ServerDeps } from './deps';

export function checkpointPod(_deps: ServerDeps) {
  return async (_req: CheckpointPodRequest__Output): Promise<CheckpointPodResponse> => {
    throw unimplemented(
      'Berth does not implement CheckpointPod yet (CheckpointContainer checkpoints one container)',
    );
  };
}
