// Version: who we are and which CRI version we speak. kubelet calls it first and refuses a
// runtime whose runtime_api_version is not v1.
import type { VersionRequest__Output, VersionResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export const RUNTIME_NAME = 'berth';
export const RUNTIME_API_VERSION = 'v1';

export function version(deps: ServerDeps) {
  return async (_req: VersionRequest__Output): Promise<VersionResponse> => ({
    // The kubelet-facing API version of the CRI itself.
    version: '0.1.0',
    runtime_name: RUNTIME_NAME,
    runtime_version: deps.version,
    runtime_api_version: RUNTIME_API_VERSION,
  });
}
