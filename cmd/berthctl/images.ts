// berthctl's image commands: pull (with a progress bar), images, inspecti, rmi (--all, --prune), imagefsinfo.
import { status as Status } from '@grpc/grpc-js';
import { call, type CriClients } from '../../api/client';
import type { Container__Output, Image__Output } from '../../api/generated';
import { encode, humanSize, shortId, table } from './format';
import { UsageError, type Out } from './common';
import { checkDocOutput, checkListOutput, DOC_OUTPUT, parseFlags } from './flags';
import { watchPull } from './pull-progress';

/** Splits a reference into the REPOSITORY and TAG columns crictl shows. */
function repoAndTag(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  if (at > ref.lastIndexOf('/')) return [ref.slice(0, at), ref.slice(at + 1)];
  return [ref, '<none>'];
}

const PULL_USAGE = 'pull [--creds USER[:PASS]] [--auth BASE64] [--progress auto|bar|plain|none] IMAGE';

export async function pull(c: CriClients, argv: string[], out: Out, err: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    {
      creds: { type: 'string' },
      auth: { type: 'string' },
      progress: { type: 'string', default: 'auto' },
    },
    PULL_USAGE,
  );
  if (positionals.length !== 1) throw new UsageError(PULL_USAGE);
  const mode = values.progress;
  if (mode !== 'auto' && mode !== 'bar' && mode !== 'plain' && mode !== 'none')
    throw new UsageError(`${PULL_USAGE}\n--progress wants auto, bar, plain or none, got ${mode}`);
  const auth: { username?: string; password?: string; auth?: string } = {};
  if (values.creds) {
    const i = values.creds.indexOf(':');
    auth.username = i < 0 ? values.creds : values.creds.slice(0, i);
    auth.password = i < 0 ? '' : values.creds.slice(i + 1);
  }
  if (values.auth) auth.auth = values.auth;
  const pulling = call(c.image, 'PullImage', {
    image: { image: positionals[0] },
    auth: Object.keys(auth).length ? auth : undefined,
  });
  if (mode !== 'none') {
    const tty = mode === 'bar' || (mode === 'auto' && process.stderr.isTTY === true);
    await watchPull(c, positionals[0], pulling, err, {
      tty,
      width: process.stderr.columns || 80,
      plainEveryMs: 2000,
    });
  }
  let ref: string;
  try {
    ref = (await pulling).image_ref;
  } catch (e) {
    // The status says what is true (NOT_FOUND, UNAVAILABLE, UNAUTHENTICATED, ...); the details name
    // every registry endpoint tried with its answer.
    const { code, details } = e as { code?: number; details?: string };
    if (typeof code !== 'number' || !details) throw e;
    throw new Error(`${Status[code] ?? code}: ${details}`);
  }
  out.write(`Image is up to date for ${ref}
`);
}

export async function images(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'images [-q] [-o table|json|yaml] [--digests] [IMAGE]';
  const { values, positionals } = parseFlags(
    argv,
    {
      quiet: { type: 'boolean', short: 'q' },
      output: { type: 'string', short: 'o', default: 'table' },
      digests: { type: 'boolean' },
    },
    usage,
  );
  if (positionals.length > 1) throw new UsageError(usage);
  checkListOutput(values.output, usage);
  const res = await call(c.image, 'ListImages', {
    filter: positionals[0] ? { image: { image: positionals[0] } } : undefined,
  });
  const list: Image__Output[] = res.images;
  if (values.quiet) {
    out.write(list.map((i) => i.id + '\n').join(''));
    return;
  }
  if (values.output === 'json' || values.output === 'yaml') {
    out.write(encode({ images: list }, values.output));
    return;
  }
  const rows: string[][] = [];
  for (const img of list) {
    const refs = img.repo_tags.length ? img.repo_tags : ['<none>:<none>'];
    const digest = img.repo_digests[0]?.split('@')[1] ?? '<none>';
    for (const ref of refs) {
      const [repo, tag] = repoAndTag(ref);
      const row = [repo, tag];
      if (values.digests) row.push(shortId(digest));
      row.push(shortId(img.id), humanSize(Number(img.size)));
      rows.push(row);
    }
  }
  const headers = ['IMAGE', 'TAG', ...(values.digests ? ['DIGEST'] : []), 'IMAGE ID', 'SIZE'];
  out.write(table(headers, rows));
}

export async function inspecti(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'inspecti [-o json|yaml] IMAGE [IMAGE...]';
  const { values, positionals } = parseFlags(argv, DOC_OUTPUT, usage);
  if (positionals.length === 0) throw new UsageError(usage);
  checkDocOutput(values.output, usage);
  for (const ref of positionals) {
    const res = await call(c.image, 'ImageStatus', { image: { image: ref }, verbose: true });
    if (!res.image) throw new Error(`no such image: ${ref}`);
    let info: unknown = res.info;
    if (res.info.info) info = JSON.parse(res.info.info);
    out.write(encode({ status: res.image, info }, values.output));
  }
}

const RMI_USAGE = 'rmi [-a|--all] [--prune] [IMAGE...]';

/** Whether a container (of any state) was made from the image. */
export function imageInUse(img: Image__Output, containers: Container__Output[]): boolean {
  const names = new Set([img.id, ...img.repo_tags, ...img.repo_digests]);
  return containers.some(
    (x) =>
      names.has(x.image_ref) ||
      names.has(x.image_id) ||
      names.has(x.image?.image ?? '') ||
      names.has(x.image?.user_specified_image ?? ''),
  );
}

export async function rmi(c: CriClients, argv: string[], out: Out, err: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { all: { type: 'boolean', short: 'a' }, prune: { type: 'boolean' } },
    RMI_USAGE,
  );
  if ((values.all || values.prune) && positionals.length)
    throw new UsageError(`${RMI_USAGE}\n--all and --prune take no IMAGE`);
  if (values.all && values.prune) throw new UsageError(`${RMI_USAGE}\n--all and --prune conflict`);
  if (!values.all && !values.prune) {
    if (positionals.length === 0) throw new UsageError(RMI_USAGE);
    for (const ref of positionals) {
      const st = await call(c.image, 'ImageStatus', { image: { image: ref } });
      if (!st.image) throw new Error(`no such image: ${ref}`);
      await call(c.image, 'RemoveImage', { image: { image: ref } });
      out.write(`Deleted: ${ref}\n`);
    }
    return;
  }
  const list = (await call(c.image, 'ListImages', {})).images;
  const containers = values.prune ? (await call(c.runtime, 'ListContainers', {})).containers : [];
  for (const img of list) {
    if (values.prune && imageInUse(img, containers)) continue;
    // A pinned image (the pause image) is kept: pods need it though no container names it.
    if (img.pinned) {
      err.write(`Kept pinned image ${img.repo_tags[0] ?? img.id}\n`);
      continue;
    }
    await call(c.image, 'RemoveImage', { image: { image: img.id } });
    for (const name of img.repo_tags.length ? img.repo_tags : [img.id]) out.write(`Deleted: ${name}\n`);
  }
}

export async function imagefsinfo(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'imagefsinfo [-o json|yaml]';
  const { values, positionals } = parseFlags(argv, DOC_OUTPUT, usage);
  if (positionals.length) throw new UsageError(usage);
  checkDocOutput(values.output, usage);
  const res = await call(c.image, 'ImageFsInfo', {});
  out.write(encode(res, values.output));
}
