// The pod's volumes that need no API server, planned as kubelet lays them out under its pods
// directory (<podsDir>/<uid>/volumes/kubernetes.io~<plugin>/<name>): emptyDir (on disk, or a tmpfs
// for medium Memory, sized by sizeLimit), hostPath (with its type check), configMap and secret
// (from --config-dir; a secret lives on a tmpfs as kubelet puts it) and downwardAPI (labels,
// annotations, name, namespace, uid), and image volumes (KEP-4639: nothing on the node's disk; the
// runner pulls the image and each volumeMount becomes a CRI Mount with `image`). Pure: the plan
// says what to create, volumes-apply.ts does it.
import type { V1KeyToPath, V1Pod, V1Volume } from '@kubernetes/client-node';
import { fieldRefValue } from './env';
import { defaultPullPolicy } from './manifest';
import { intValue } from './quantity';

export interface VolumeFile {
  /** relative to the volume's directory */
  path: string;
  content: string;
  mode: number;
}

export type HostPathType =
  | ''
  | 'DirectoryOrCreate'
  | 'Directory'
  | 'FileOrCreate'
  | 'File'
  | 'Socket'
  | 'CharDevice'
  | 'BlockDevice';

export interface VolumePlan {
  name: string;
  kind: 'emptyDir' | 'hostPath' | 'configMap' | 'secret' | 'downwardAPI' | 'image';
  /** '' for an image volume (the runtime mounts the image) */
  hostPath: string;
  readOnly: boolean;
  /** a tmpfs on hostPath (emptyDir medium Memory, secrets); sizeBytes 0: tmpfs's default size */
  tmpfs?: { sizeBytes: number };
  hostPathType?: HostPathType;
  /** files written into the volume (configMap, secret, downwardAPI) */
  files?: VolumeFile[];
  /** an image volume: the reference, its pull policy (defaulted), and once pulled the image id */
  image?: ImageVolume;
}

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ImageVolume {
  reference: string;
  pullPolicy: PullPolicy;
  /** what PullImage (or ImageStatus) returned: kubelet mounts the image by its id */
  imageRef?: string;
}

export interface ConfigSource {
  configMap(name: string): Record<string, string> | undefined;
  secret(name: string): Record<string, string> | undefined;
}

const PLUGIN_DIR: Record<string, string> = {
  emptyDir: 'kubernetes.io~empty-dir',
  configMap: 'kubernetes.io~configmap',
  secret: 'kubernetes.io~secret',
  downwardAPI: 'kubernetes.io~downward-api',
};

function volumeDir(podsDir: string, uid: string, kind: string, name: string): string {
  return `${podsDir}/${uid}/volumes/${PLUGIN_DIR[kind]}/${name}`;
}

function checkRelative(p: string, what: string): void {
  if (!p || p.startsWith('/') || p.split('/').includes('..'))
    throw new Error(`${what}: path ${JSON.stringify(p)} must be relative without '..'`);
}

function keyFiles(
  data: Record<string, string>,
  items: V1KeyToPath[] | undefined,
  defaultMode: number,
  what: string,
  optional: boolean,
): VolumeFile[] {
  if (!items?.length)
    return Object.keys(data)
      .sort()
      .map((k) => ({ path: k, content: data[k], mode: defaultMode }));
  const files: VolumeFile[] = [];
  for (const it of items) {
    checkRelative(it.path, what);
    if (!(it.key in data)) {
      if (optional) continue;
      throw new Error(`${what}: key ${JSON.stringify(it.key)} is missing`);
    }
    files.push({ path: it.path, content: data[it.key], mode: it.mode ?? defaultMode });
  }
  return files;
}

const HOST_PATH_TYPES: HostPathType[] = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];

const PULL_POLICIES: PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];

/**
 * An image volume as the API server validates and defaults it: `reference` required, `pullPolicy`
 * Always, IfNotPresent or Never, defaulted to Always for `:latest` or no tag, else IfNotPresent.
 */
export function imageVolume(v: V1Volume): ImageVolume {
  const what = `volume ${JSON.stringify(v.name)}`;
  const reference = v.image?.reference ?? '';
  if (!reference) throw new Error(`${what}: image.reference is missing`);
  const pullPolicy = (v.image?.pullPolicy || defaultPullPolicy(reference)) as PullPolicy;
  if (!PULL_POLICIES.includes(pullPolicy))
    throw new Error(
      `${what}: image.pullPolicy ${JSON.stringify(pullPolicy)} is not ${PULL_POLICIES.join(', ')}`,
    );
  return { reference, pullPolicy };
}

function planOne(pod: V1Pod, v: V1Volume, podsDir: string, cfg: ConfigSource, nodeName: string): VolumePlan {
  const uid = pod.metadata?.uid ?? '';
  const what = `volume ${JSON.stringify(v.name)}`;
  if (v.emptyDir) {
    const plan: VolumePlan = {
      name: v.name,
      kind: 'emptyDir',
      hostPath: volumeDir(podsDir, uid, 'emptyDir', v.name),
      readOnly: false,
    };
    const medium = v.emptyDir.medium ?? '';
    if (medium === 'Memory') {
      plan.tmpfs = {
        sizeBytes: v.emptyDir.sizeLimit ? intValue(v.emptyDir.sizeLimit, `${what} sizeLimit`) : 0,
      };
    } else if (medium !== '') {
      throw new Error(`${what}: emptyDir medium ${JSON.stringify(medium)} is not supported ("" or Memory)`);
    }
    return plan;
  }
  if (v.hostPath) {
    const type = (v.hostPath.type ?? '') as HostPathType;
    if (!HOST_PATH_TYPES.includes(type))
      throw new Error(`${what}: hostPath type ${JSON.stringify(type)} is unknown`);
    if (!v.hostPath.path.startsWith('/')) throw new Error(`${what}: hostPath path must be absolute`);
    return { name: v.name, kind: 'hostPath', hostPath: v.hostPath.path, readOnly: false, hostPathType: type };
  }
  if (v.configMap || v.secret) {
    const isSecret = !!v.secret;
    const name = (isSecret ? v.secret!.secretName : v.configMap!.name) ?? '';
    const optional = (isSecret ? v.secret!.optional : v.configMap!.optional) ?? false;
    const data = isSecret ? cfg.secret(name) : cfg.configMap(name);
    const kind = isSecret ? 'secret' : 'configMap';
    if (!data && !optional)
      throw new Error(
        `${what}: ${kind} ${JSON.stringify(name)} is not in --config-dir (see berthctl play --help)`,
      );
    const defaultMode = (isSecret ? v.secret!.defaultMode : v.configMap!.defaultMode) ?? 0o644;
    const items = isSecret ? v.secret!.items : v.configMap!.items;
    return {
      name: v.name,
      kind,
      hostPath: volumeDir(podsDir, uid, kind, v.name),
      readOnly: true,
      files: data ? keyFiles(data, items, defaultMode, what, optional) : [],
      ...(isSecret ? { tmpfs: { sizeBytes: 0 } } : {}),
    };
  }
  if (v.downwardAPI) {
    const defaultMode = v.downwardAPI.defaultMode ?? 0o644;
    const files: VolumeFile[] = [];
    for (const it of v.downwardAPI.items ?? []) {
      checkRelative(it.path, what);
      if (!it.fieldRef) throw new Error(`${what}: item ${it.path}: only fieldRef items are supported`);
      const fp = it.fieldRef.fieldPath;
      if (!/^metadata\.(name|namespace|uid|labels|annotations)(\['.+'\])?$/.test(fp))
        throw new Error(`${what}: fieldRef ${fp} is not available in a downwardAPI volume`);
      const content = fieldRefValue(pod, fp, { podIP: '', podIPs: [], hostIP: '', nodeName });
      files.push({
        path: it.path,
        content: fp === 'metadata.labels' || fp === 'metadata.annotations' ? content + '\n' : content,
        mode: it.mode ?? defaultMode,
      });
    }
    return {
      name: v.name,
      kind: 'downwardAPI',
      hostPath: volumeDir(podsDir, uid, 'downwardAPI', v.name),
      readOnly: true,
      files,
    };
  }
  if (v.image) return { name: v.name, kind: 'image', hostPath: '', readOnly: true, image: imageVolume(v) };
  const plugin = Object.keys(v).find((k) => k !== 'name') ?? '(none)';
  throw new Error(`${what}: ${plugin} volumes need an API server or are not supported by berthctl play`);
}

/** Every volume of the pod, or an error naming the first one play cannot provide. */
export function planVolumes(pod: V1Pod, podsDir: string, cfg: ConfigSource, nodeName = ''): VolumePlan[] {
  return (pod.spec?.volumes ?? []).map((v) => planOne(pod, v, podsDir, cfg, nodeName));
}
