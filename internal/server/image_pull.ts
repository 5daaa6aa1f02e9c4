// PullImage: normalise the reference, take credentials from the request (the store falls back to
// the config's per-registry auths), pull, and answer with the image id, as containerd does.
import type { PullImageRequest__Output, PullImageResponse } from '../../api/generated';
import type { RegistryCredentials } from '../image/types';
import type { ServerDeps } from './deps';
import type { RpcContext } from './rpc';
import { requireImageRef } from './validate';

export function credentialsFrom(auth: PullImageRequest__Output['auth']): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const c: RegistryCredentials = {};
  if (auth.username) c.username = auth.username;
  if (auth.password) c.password = auth.password;
  if (auth.auth) c.auth = auth.auth;
  if (auth.identity_token) c.identityToken = auth.identity_token;
  if (auth.registry_token) c.registryToken = auth.registry_token;
  return Object.keys(c).length ? c : undefined;
}

export function pullImage(deps: ServerDeps) {
  return async (req: PullImageRequest__Output, ctx?: RpcContext): Promise<PullImageResponse> => {
    const ref = requireImageRef(req.image?.image, 'image.image');
    const rec = await deps.images.pull(ref, {
      credentials: credentialsFrom(req.auth),
      signal: ctx?.signal,
    });
    return { image_ref: rec.id };
  };
}
