// ListImages, optionally filtered by a reference or id.
import type { ListImagesRequest__Output, ListImagesResponse } from '../../api/generated';
import type { ServerDeps } from './deps';
import { toCriImage } from './image_convert';

export function listImages(deps: ServerDeps) {
  return async (req: ListImagesRequest__Output): Promise<ListImagesResponse> => {
    const ref = req.filter?.image?.image?.trim();
    const recs = deps.images.list(ref ? { image: ref } : undefined);
    return { images: recs.map((r) => toCriImage(r, deps.images.isPinned(r))) };
  };
}
