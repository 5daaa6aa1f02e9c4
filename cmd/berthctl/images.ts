// berthctl's image commands: pull, images, inspecti, rmi, imagefsinfo.
import { parseArgs } from 'node:util';
import { status as Status } from '@grpc/grpc-js';
import { call, type CriClients } from '../../api/client';
import type { Image__Output } from '../../api/generated';
import { humanSize, json, shortId, table } from './format';
import { UsageError, type Out } from './common';

/** Splits a reference into the REPOSITORY and TAG columns crictl shows. */
function repoAndTag(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  if (at > ref.lastIndexOf('/')) return [ref.slice(0, at), ref.slice(at + 1)];
  return [ref, '<none>'];
}

export async function pull(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { creds: { type: 'string' }, auth: { type: 'string' } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('pull [--creds USER[:PASS]] [--auth BASE64] IMAGE');
  const auth: { username?: string; password?: string; auth?: string } = {};
  if (values.creds) {
    const i = values.creds.indexOf(':');
    auth.username = i < 0 ? values.creds : values.creds.slice(0, i);
    auth.password = i < 0 ? '' : values.creds.slice(i + 1);
  }
  if (values.auth) auth.auth = values.auth;
  let ref: string;
  try {
    const res = await call(c.image, 'PullImage', {
      image: { image: positionals[0] },
      auth: Object.keys(auth).length ? auth : undefined,
    });
    ref = res.image_ref;
  } catch (e) {
    // The status says what is true (NOT_FOUND, UNAVAILABLE, UNAUTHENTICATED, ...); the details name
    // every registry endpoint tried with its answer.
    const { code, details } = e as { code?: number; details?: string };
    if (typeof code !== 'number' || !details) throw e;
    throw new Error(`${Status[code] ?? code}: ${details}`);
  }
  out.write(`Image is up to date for ${ref}\n`);
}

export async function images(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      quiet: { type: 'boolean', short: 'q' },
      output: { type: 'string', short: 'o', default: 'table' },
      digests: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const res = await call(c.image, 'ListImages', {
    filter: positionals[0] ? { image: { image: positionals[0] } } : undefined,
  });
  const list: Image__Output[] = res.images;
  if (values.quiet) {
    out.write(list.map((i) => i.id + '\n').join(''));
    return;
  }
  if (values.output === 'json') {
    out.write(json({ images: list }));
    return;
  }
  if (values.output !== 'table')
    throw new UsageError(`unknown output format ${values.output} (table or json)`);
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
  if (argv.length === 0) throw new UsageError('inspecti IMAGE [IMAGE...]');
  for (const ref of argv) {
    const res = await call(c.image, 'ImageStatus', { image: { image: ref }, verbose: true });
    if (!res.image) throw new Error(`no such image: ${ref}`);
    let info: unknown = res.info;
    if (res.info.info) info = JSON.parse(res.info.info);
    out.write(json({ status: res.image, info }));
  }
}

export async function rmi(c: CriClients, argv: string[], out: Out): Promise<void> {
  if (argv.length === 0) throw new UsageError('rmi IMAGE [IMAGE...]');
  for (const ref of argv) {
    const st = await call(c.image, 'ImageStatus', { image: { image: ref } });
    if (!st.image) throw new Error(`no such image: ${ref}`);
    await call(c.image, 'RemoveImage', { image: { image: ref } });
    out.write(`Deleted: ${ref}\n`);
  }
}

export async function imagefsinfo(c: CriClients, _argv: string[], out: Out): Promise<void> {
  const res = await call(c.image, 'ImageFsInfo', {});
  out.write(json(res));
}
