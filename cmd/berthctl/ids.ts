// Lets users type the 13-character ids the tables show, as with crictl on containerd: a short
// id is resolved to the one full id it prefixes (an ambiguous prefix is an error).
import { call, type CriClients } from '../../api/client';

const FULL_ID = /^[0-9a-f]{64}$/;

function pick(kind: string, given: string, ids: string[]): string {
  const hits = [...new Set(ids.filter((id) => id.startsWith(given)))];
  if (hits.length > 1) {
    throw new Error(
      `${kind} id ${given} is ambiguous: it prefixes ${hits.map((h) => h.slice(0, 13)).join(', ')}`,
    );
  }
  // No match: pass the id on as given so the server answers (NotFound, or success for removes).
  return hits[0] ?? given;
}

export async function resolvePodId(c: CriClients, id: string): Promise<string> {
  if (FULL_ID.test(id) || id === '') return id;
  const res = await call(c.runtime, 'ListPodSandbox', { filter: { id } }).catch(() => undefined);
  return res
    ? pick(
        'pod',
        id,
        res.items.map((p) => p.id),
      )
    : id;
}

export async function resolveContainerId(c: CriClients, id: string): Promise<string> {
  if (FULL_ID.test(id) || id === '') return id;
  const res = await call(c.runtime, 'ListContainers', { filter: { id } }).catch(() => undefined);
  return res
    ? pick(
        'container',
        id,
        res.containers.map((x) => x.id),
      )
    : id;
}
