// ImageStatus: an image by id, name:tag or name@digest. A missing image is not an error: the
// response simply has no image, which is how kubelet learns it must pull.
import type { ImageStatusRequest__Output, ImageStatusResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toCriImage } from './image_convert';
import { requireImageLookup } from './validate';

export function imageStatus(deps: ServerDeps) {
  return async (req: ImageStatusRequest__Output): Promise<ImageStatusResponse> => {
    const ref = requireImageLookup(req.image?.image, 'image.image');
    const rec = deps.images.get(ref);
    if (!rec) return { info: {} };
    const res: ImageStatusResponse = { image: toCriImage(rec, deps.images.isPinned(rec)), info: {} };
    if (req.verbose) {
      res.info = {
        info: JSON.stringify({
          manifestDigest: rec.manifestDigest,
          manifestMediaType: rec.manifestMediaType,
          chainIDs: deps.images.chainIds(rec),
          layers: rec.layers,
          imageSpec: rec.config,
          // containers (not yet removed) whose rootfs or an image volume keeps this image's layers
          inUseBy: deps.containers.usersOfImage(rec.id),
        }),
      };
    }
    return res;
  };
}
