// ImageRecord → the CRI Image message, shared by ImageStatus and ListImages.
import type { Image } from '../../api/generated';
import type { ImageRecord } from '../image/types';

/**
 * The image's User as CRI wants it: a numeric user becomes `uid`, a name becomes `username`
 * (the group part of `user:group` is not part of the CRI image message).
 */
export function imageUser(user: string | undefined): { uid?: string; username: string } {
  const u = (user ?? '').split(':')[0];
  if (u === '') return { username: '' };
  if (/^\d+$/.test(u)) return { uid: u, username: '' };
  return { username: u };
}

export function toCriImage(rec: ImageRecord, pinned: boolean): Image {
  const user = imageUser(rec.config.config?.User);
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: String(rec.size),
    uid: user.uid !== undefined ? { value: user.uid } : undefined,
    username: user.username,
    spec: { image: rec.id, annotations: {} },
    pinned,
  };
}
