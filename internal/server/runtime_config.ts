// RuntimeConfig: tells kubelet which cgroup driver Berth uses, so the two agree
// (kubelet's KubeletCgroupDriverFromCRI).
import type { RuntimeConfigRequest__Output, RuntimeConfigResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export function runtimeConfig(deps: ServerDeps) {
  return async (_req: RuntimeConfigRequest__Output): Promise<RuntimeConfigResponse> => ({
    linux: { cgroup_driver: deps.config.runtime.cgroup_driver === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
  });
}
