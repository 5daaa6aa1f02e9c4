// UpdateContainerResources mechanics: which OCI resources a CRI request means, how they merge into
// the container's spec (what `runc update` leaves alone stays), and what a refusal means.
import type { LinuxContainerResources__Output } from '../../api/generated';
import { BerthError, errMessage, failedPrecondition, invalidArgument, short, Status } from '../errors';
import { buildResources } from '../oci/resources';
import { resourceHostFacts } from '../oci/resource-host';
import type { OciResources, OciSpec } from '../oci/spec-types';
import type { RuntimeFeatures } from '../oci/spec';
import { readBundleSpec, writeBundle } from '../oci/bundle';

/** The OCI resources a request asks for; INVALID_ARGUMENT on bad values (before any side effect). */
export function requestedResources(
  r: LinuxContainerResources__Output | null | undefined,
  features: RuntimeFeatures,
): OciResources {
  return buildResources(r, {
    swapSupported: features.swap ?? true,
    hugetlbSupported: features.hugetlb ?? true,
    host: resourceHostFacts(),
  });
}

/**
 * `next` over `old` the way `runc update` applies it: a field the update does not set keeps its
 * value; devices (not part of CRI resources) are kept.
 */
export function mergeResources(old: OciResources | undefined, next: OciResources): OciResources {
  const out: OciResources = { ...(old ?? {}) };
  if (next.cpu) out.cpu = { ...(old?.cpu ?? {}), ...next.cpu };
  if (next.memory) out.memory = { ...(old?.memory ?? {}), ...next.memory };
  if (next.hugepageLimits) {
    const byPage = new Map((old?.hugepageLimits ?? []).map((h) => [h.pageSize, h]));
    for (const h of next.hugepageLimits) byPage.set(h.pageSize, h);
    out.hugepageLimits = [...byPage.values()];
  }
  if (next.unified) out.unified = { ...(old?.unified ?? {}), ...next.unified };
  return out;
}

/** The record's new CRI resources: the request, except what cannot change on a live container. */
export function recordResources(
  old: LinuxContainerResources__Output | null | undefined,
  req: LinuxContainerResources__Output,
): LinuxContainerResources__Output {
  return { ...req, oom_score_adj: old?.oom_score_adj ?? req.oom_score_adj };
}

/** Writes the merged resources into the bundle's config.json (the spec stays the source of truth). */
export async function updateBundleResources(bundle: string, next: OciResources): Promise<OciSpec> {
  const spec = await readBundleSpec(bundle);
  spec.linux.resources = mergeResources(spec.linux.resources, next);
  await writeBundle(bundle, spec);
  return spec;
}

/**
 * A runtime's refusal as a CRI error. The kernel answers EBUSY when a memory limit is below what
 * the cgroup uses now (runc: "unable to set memory limit ... (current usage: ...)").
 */
export function updateRefusal(err: unknown, id: string, r: LinuxContainerResources__Output): BerthError {
  const msg = errMessage(err);
  if (/current usage|device or resource busy|EBUSY/i.test(msg))
    return failedPrecondition(
      `container ${short(id)}: memory_limit_in_bytes ${short(r.memory_limit_in_bytes)} is below what the container uses now; the old limits stay (${msg})`,
    );
  if (/invalid argument|EINVAL|numerical result out of range|ERANGE/i.test(msg))
    return invalidArgument(
      `container ${short(id)}: the runtime refused the resources; the old limits stay (${msg})`,
    );
  if (err instanceof BerthError) return err;
  return new BerthError(Status.INTERNAL, `container ${short(id)}: update failed: ${msg}`);
}
