// StreamImages: ListImages' items and filter as a stream of size-bounded batches.
import type { Image, StreamImagesRequest__Output } from '../../api/generated';
import type { ServerDeps } from './deps';
import { listImages } from './image_list';
import { streamList } from './stream_list';

export function streamImages(deps: ServerDeps) {
  const list = listImages(deps);
  return streamList(deps.log.child({ component: 'cri' }), {
    name: 'StreamImages',
    list: async (req: StreamImagesRequest__Output) => (await list({ filter: req.filter })).images ?? [],
    itemType: 'Image',
    wrap: (images: Image[]) => ({ images }),
  });
}
