// From parsed manifest documents to the pods `berthctl play` runs: a Pod as written, or the one pod
// (replica 0) a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job controller would make from
// its template, named and labelled as that controller names it, with the API server's defaults
// applied (what kubelet would have received). Names and uids are derived from the document, so the
// same file always means the same pods (`--down` finds them again).
import * as crypto from 'node:crypto';
import type { V1Container, V1ObjectMeta, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';

export const PLAY_LABEL = 'io.berth.play';

export const TEMPLATE_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'] as const;

export interface PlayPod {
  pod: V1Pod;
  /** where it came from, e.g. "Deployment/web" */
  source: string;
  /** a Job's pod: done when its containers complete */
  job: boolean;
}

// the alphabet apimachinery's rand.String and SafeEncodeString use (no vowels, no 0/1/3)
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

function safeString(seed: string, n: number): string {
  const h = crypto.createHash('sha256').update(seed).digest();
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHANUMS[h[i] % ALPHANUMS.length];
  return s;
}

/** A stable pod uid (as kubelet does for static pods: a hash of what defines the pod). */
function stableUid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkName(name: string | undefined, what: string, re = DNS1123_SUBDOMAIN, max = 253): string {
  if (!name) throw new Error(`${what}: metadata.name is missing`);
  if (name.length > max || !re.test(name))
    throw new Error(`${what}: name ${JSON.stringify(name.slice(0, 80))} is not a valid DNS name`);
  return name;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The image pull policy the API server defaults: Always for :latest or no tag, else IfNotPresent. */
export function defaultPullPolicy(image: string): string {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  const tag = colon < 0 ? '' : last.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainer(c: V1Container, hostNetwork: boolean, what: string): V1Container {
  checkName(c.name, `${what} container`, DNS1123_LABEL, 63);
  if (!c.image) throw new Error(`${what} container ${c.name}: image is missing`);
  const requests = { ...(c.resources?.requests ?? {}) };
  // the API server defaults a request to its limit
  for (const [k, v] of Object.entries(c.resources?.limits ?? {})) if (!(k in requests)) requests[k] = v;
  return {
    ...c,
    imagePullPolicy: c.imagePullPolicy ?? defaultPullPolicy(c.image),
    terminationMessagePath: c.terminationMessagePath ?? '/dev/termination-log',
    terminationMessagePolicy: c.terminationMessagePolicy ?? 'File',
    resources: { ...c.resources, requests },
    ports: (c.ports ?? []).map((p) => ({
      ...p,
      protocol: p.protocol ?? 'TCP',
      hostPort: p.hostPort ?? (hostNetwork ? p.containerPort : undefined),
    })),
  };
}

/** The API server's defaults on a pod, and the checks play needs before it sends anything. */
export function defaultPod(pod: V1Pod, what: string): V1Pod {
  const spec = pod.spec;
  if (!spec) throw new Error(`${what}: spec is missing`);
  if (!spec.containers?.length) throw new Error(`${what}: spec.containers is empty`);
  const hostNetwork = spec.hostNetwork ?? false;
  const containers = spec.containers.map((c) => defaultContainer(c, hostNetwork, what));
  const initContainers = (spec.initContainers ?? []).map((c) => defaultContainer(c, hostNetwork, what));
  const names = new Set<string>();
  for (const c of [...initContainers, ...containers]) {
    if (names.has(c.name)) throw new Error(`${what}: two containers are named ${c.name}`);
    names.add(c.name);
  }
  const restartPolicy = spec.restartPolicy ?? 'Always';
  if (!['Always', 'OnFailure', 'Never'].includes(restartPolicy))
    throw new Error(
      `${what}: restartPolicy ${JSON.stringify(restartPolicy)} is not Always, OnFailure or Never`,
    );
  return {
    ...pod,
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...pod.metadata, namespace: pod.metadata?.namespace || 'default' },
    spec: {
      ...spec,
      containers,
      initContainers,
      restartPolicy,
      dnsPolicy: spec.dnsPolicy ?? 'ClusterFirst',
      terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
      volumes: spec.volumes ?? [],
    },
  };
}

function fromTemplate(
  kind: string,
  owner: V1ObjectMeta,
  template: V1PodTemplateSpec | undefined,
): { pod: V1Pod; what: string } {
  const ownerName = checkName(owner.name, kind);
  const what = `${kind}/${ownerName}`;
  if (!template?.spec) throw new Error(`${what}: spec.template.spec is missing`);
  const ns = owner.namespace || template.metadata?.namespace || 'default';
  const suffix = safeString(`${kind}/${ns}/${ownerName}`, 5);
  const labels = { ...(template.metadata?.labels ?? {}) };
  let name: string;
  const spec = { ...template.spec };
  switch (kind) {
    case 'Deployment': {
      const hash = safeString(JSON.stringify(template), 10);
      labels['pod-template-hash'] = hash;
      name = `${ownerName}-${hash}-${suffix}`;
      break;
    }
    case 'StatefulSet':
      name = `${ownerName}-0`;
      labels['statefulset.kubernetes.io/pod-name'] = name;
      labels['apps.kubernetes.io/pod-index'] = '0';
      spec.hostname = spec.hostname ?? name;
      break;
    case 'Job': {
      name = `${ownerName}-${suffix}`;
      const uid = stableUid(`job/${ns}/${ownerName}`);
      labels['batch.kubernetes.io/controller-uid'] = uid;
      labels['batch.kubernetes.io/job-name'] = ownerName;
      labels['controller-uid'] = uid;
      labels['job-name'] = ownerName;
      const rp = spec.restartPolicy;
      if (rp !== 'Never' && rp !== 'OnFailure')
        throw new Error(
          `${what}: a Job's template needs restartPolicy Never or OnFailure, got ${JSON.stringify(rp ?? '')}`,
        );
      break;
    }
    default:
      name = `${ownerName}-${suffix}`;
  }
  return {
    pod: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...template.metadata, name, namespace: ns, labels },
      spec,
    },
    what,
  };
}

/** The pods of a manifest's documents; anything that is not a pod or a pod template is refused by kind. */
export function podsFromDocuments(docs: unknown[]): PlayPod[] {
  const out: PlayPod[] = [];
  const seen = new Set<string>();
  docs.forEach((doc, i) => {
    if (!isObject(doc)) throw new Error(`document ${i + 1} is not a Kubernetes object`);
    const kind = String(doc.kind ?? '');
    const meta = (doc.metadata ?? {}) as V1ObjectMeta;
    let pod: V1Pod;
    let what: string;
    if (kind === 'Pod') {
      what = `Pod/${checkName(meta.name, 'Pod')}`;
      pod = doc as V1Pod;
    } else if ((TEMPLATE_KINDS as readonly string[]).includes(kind)) {
      const spec = (doc.spec ?? {}) as { template?: V1PodTemplateSpec };
      ({ pod, what } = fromTemplate(kind, meta, spec.template));
    } else {
      throw new Error(
        `document ${i + 1}: kind ${JSON.stringify(kind || '(none)')} cannot be played ` +
          `(Pod, ${TEMPLATE_KINDS.join(', ')})`,
      );
    }
    pod = defaultPod(pod, what);
    const md = pod.metadata!;
    const key = `${md.namespace}/${md.name}`;
    if (seen.has(key)) throw new Error(`${what}: a second pod named ${key}`);
    seen.add(key);
    if (!md.uid) md.uid = stableUid(`pod/${key}`);
    out.push({ pod, source: what, job: kind === 'Job' });
  });
  return out;
}
