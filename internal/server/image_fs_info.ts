// ImageFsInfo: what the image filesystem holds (content and unpacked layers), for kubelet's
// image garbage collection thresholds.
import type { ImageFsInfoRequest__Output, ImageFsInfoResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export function nowNanos(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

export function imageFsInfo(deps: ServerDeps) {
  return async (_req: ImageFsInfoRequest__Output): Promise<ImageFsInfoResponse> => {
    const u = await deps.images.fsUsage();
    return {
      image_filesystems: [
        {
          timestamp: nowNanos(),
          fs_id: { mountpoint: u.mountpoint },
          used_bytes: { value: String(u.bytes) },
          inodes_used: { value: String(u.inodes) },
        },
      ],
      container_filesystems: [],
    };
  };
}
