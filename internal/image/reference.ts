// Image references, parsed and normalised the way Docker and containerd do it (the grammar of
// distribution/reference): `busybox` is `docker.io/library/busybox:latest`, a first component with a
// '.' or ':' or equal to `localhost` is a registry host, tags and digests may both be present.
import { invalidArgument, short } from '../errors';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_MAX = 255;

export interface ImageReference {
  /** registry host with optional port, e.g. docker.io, localhost:5000, [::1]:5000 */
  domain: string;
  /** repository path inside the registry, e.g. library/busybox */
  path: string;
  tag?: string;
  /** `sha256:<64 hex>` */
  digest?: string;
}

// One path component: lowercase alphanumerics joined by single separators ('.', '_', '__', '-'+).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-zA-Z=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;

/** Whether the first path component names a registry host rather than a Docker Hub namespace. */
export function looksLikeDomain(component: string): boolean {
  return (
    component.includes('.') ||
    component.includes(':') ||
    component === 'localhost' ||
    component !== component.toLowerCase()
  );
}

/** Checks a digest string; only sha256 is supported. Throws INVALID_ARGUMENT with the reason. */
export function validateDigest(digest: string, what = 'digest'): string {
  if (!DIGEST.test(digest)) throw invalidArgument(`invalid ${what} ${short(digest)}: must be algorithm:hex`);
  const [alg, hex] = digest.split(':', 2) as [string, string];
  if (alg !== 'sha256') throw invalidArgument(`unsupported ${what} algorithm ${short(alg)} (only sha256)`);
  if (!SHA256_HEX.test(hex))
    throw invalidArgument(`invalid ${what} ${short(digest)}: sha256 needs 64 lowercase hex characters`);
  return digest;
}

/**
 * Parses and normalises a reference. A reference without tag and digest gets `:latest`; one with a
 * digest keeps its tag if it had one. Throws INVALID_ARGUMENT naming what is wrong.
 */
export function parseReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw invalidArgument(`invalid image reference ${short(input)}: ${why}`);
  };
  if (typeof input !== 'string' || input.length === 0) fail('empty');
  if (input.length > 4096) fail('too long');
  if (/\s/.test(input)) fail('contains whitespace');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      validateDigest(digest);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`invalid tag ${short(tag)} (allowed: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
  if (rest.length === 0) fail('missing repository name');

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeDomain(rest.slice(0, slash))) {
    domain = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) fail(`invalid registry host ${short(domain)}`);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;

  if (path.length === 0) fail('missing repository name');
  for (const c of path.split('/')) {
    if (c.length === 0) fail('empty path component');
    if (c !== c.toLowerCase()) fail('repository name must be lowercase');
    if (!PATH_COMPONENT.test(c)) fail(`invalid path component ${short(c)}`);
  }
  if (domain === DEFAULT_DOMAIN && /^library\/[a-f0-9]{64}$/.test(path))
    fail('a 64-character hex string is an image id, not a repository name');
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) fail(`name longer than ${NAME_TOTAL_MAX} characters`);

  if (!tag && !digest) tag = DEFAULT_TAG;
  return { domain, path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `domain/path`, e.g. docker.io/library/busybox. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised string: name[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** `name:tag`, or undefined for a digest-only reference. */
export function tagReference(ref: ImageReference): string | undefined {
  return ref.tag ? `${repositoryName(ref)}:${ref.tag}` : undefined;
}

/** `name@digest` for a given manifest digest. */
export function digestReference(ref: ImageReference, digest: string): string {
  return `${repositoryName(ref)}@${digest}`;
}

/** Normalises a reference string; throws INVALID_ARGUMENT when it is not one. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** Docker's short form: `docker.io/library/busybox:latest` → `busybox:latest`. */
export function familiarName(ref: ImageReference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Host part used for registry endpoints and credentials: docker.io is served by registry-1.docker.io. */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}
