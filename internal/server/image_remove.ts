// RemoveImage: idempotent, as the CRI requires; removing an image that is not there succeeds.
import type { RemoveImageRequest__Output, RemoveImageResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { requireImageLookup } from './validate';

export function removeImage(deps: ServerDeps) {
  return async (req: RemoveImageRequest__Output): Promise<RemoveImageResponse> => {
    const ref = requireImageLookup(req.image?.image, 'image.image');
    await deps.images.remove(ref);
    return {};
  };
}
