// kubelet's restart rules: whether an exited container is started again (restartPolicy; a sidecar
// always; an init container that failed unless Never), and the crash back-off between restarts
// (pkg/kubelet/kuberuntime: the first restart at once, then 10 s doubling up to 5 min).

export const BACKOFF_START_S = 10;
export const BACKOFF_MAX_S = 300;
/** a container that ran this long without crashing starts its back-off afresh */
export const BACKOFF_RESET_MS = 10 * 60 * 1000;

export function shouldRestart(
  policy: string,
  c: { init: boolean; sidecar: boolean },
  exitCode: number,
): boolean {
  if (c.init && c.sidecar) return true;
  if (c.init) return exitCode !== 0 && policy !== 'Never';
  if (policy === 'Always') return true;
  if (policy === 'OnFailure') return exitCode !== 0;
  return false;
}

/** The back-off after a restart, given the one before it (0: no restart yet). */
export function nextBackoff(prevS: number): number {
  return prevS ? Math.min(2 * prevS, BACKOFF_MAX_S) : BACKOFF_START_S;
}
