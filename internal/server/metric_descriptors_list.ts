// ListMetricDescriptors: the cAdvisor-named metrics ListPodSandboxMetrics returns, with their label keys.
import type {
  ListMetricDescriptorsRequest__Output,
  ListMetricDescriptorsResponse,
} from '../../api/generated';
import type { ServerDeps } from './deps';

export function listMetricDescriptors(deps: ServerDeps) {
  return async (_req: ListMetricDescriptorsRequest__Output): Promise<ListMetricDescriptorsResponse> => ({
    descriptors: deps.stats.descriptors(),
  });
}
