// Promise.all for steps that touch the same things as the cleanup after them: it waits for every
// step before it throws, so no step is still running (a mkdir, a write) while the caller undoes the
// others.

/** Like Promise.all, but every promise has settled when the first failure is thrown. */
export async function allOrFirstError<T extends readonly unknown[]>(
  ps: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === 'rejected') throw r.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
