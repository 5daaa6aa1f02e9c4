// The order of CheckpointPod's work, apart from what each step does (ContainerService supplies the
// steps: runc pause/resume, CheckpointContainer's archive, the manifest). The proto asks for one
// consistent cut: every selected container paused before any is captured, all kept paused until
// every one is captured, and every paused one resumed before the call returns, on success, error
// or deadline. On any failure the partial output is removed before the error is returned.
import { deadlineExceeded, errMessage, internalError } from '../errors';

export interface PodCheckpointSteps<C> {
  /** a short name for errors */
  name(c: C): string;
  pause(c: C): Promise<void>;
  resume(c: C): Promise<void>;
  /** captures container `n` (its archive in the output dir) */
  capture(c: C, n: number): Promise<void>;
  /** writes the configs and the manifest, once every container is captured and resumed */
  finish(): Promise<void>;
  /** removes everything written in the output dir */
  clean(): Promise<void>;
}

export async function runPodCheckpoint<C>(
  containers: C[],
  steps: PodCheckpointSteps<C>,
  signal?: AbortSignal,
): Promise<void> {
  const checkDeadline = (): void => {
    if (signal?.aborted)
      throw deadlineExceeded('CheckpointPod: the call was cancelled or its deadline passed');
  };
  const paused: C[] = [];
  let failure: unknown;
  try {
    for (const c of containers) {
      checkDeadline();
      await steps.pause(c);
      paused.push(c);
    }
    for (const [n, c] of containers.entries()) {
      checkDeadline();
      await steps.capture(c, n);
    }
  } catch (err) {
    failure = err;
  }
  // every paused container is resumed, whatever happened
  const stuck: string[] = [];
  for (const c of paused)
    await steps.resume(c).catch((err: unknown) => stuck.push(`${steps.name(c)}: ${errMessage(err)}`));
  if (stuck.length) {
    const msg = `resuming paused containers failed: ${stuck.join('; ')}`;
    if (failure === undefined) failure = internalError(msg);
    else if (failure instanceof Error) failure.message += `; then ${msg}`;
  }
  if (failure === undefined) {
    try {
      await steps.finish();
      return;
    } catch (err) {
      failure = err;
    }
  }
  await steps.clean().catch(() => undefined);
  throw failure;
}
