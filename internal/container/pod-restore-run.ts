// The order of RestorePod's work once the request is checked (./pod-checkpoint.ts planRestore),
// apart from what each step does (the server supplies the steps: the sandbox service's
// RunPodSandbox, the container service's create-from-checkpoint, and their removals). The proto
// asks: on success every container is CREATED and has not run its restored process; on error the
// runtime removes every sandbox and container the call created before returning. So: the sandbox
// first, then each container in plan order; on any failure (or a passed deadline) the containers
// made so far are removed newest first, then the sandbox, and the first error is returned.
import { deadlineExceeded, errMessage } from '../errors';
import type { RestorePlan, RestoreStep } from './pod-checkpoint';

export interface PodRestoreSteps {
  /** RunPodSandbox with the plan's config on its handler; the new pod's id */
  runSandbox(plan: RestorePlan['sandbox']): Promise<string>;
  /** creates container `n` of the plan from its checkpoint, CREATED (not started); its id */
  createContainer(podId: string, step: RestoreStep, n: number): Promise<string>;
  removeContainer(id: string): Promise<void>;
  /** removes the pod sandbox (its network, namespaces, infra container and record) */
  removeSandbox(podId: string): Promise<void>;
}

export interface PodRestoreResult {
  podId: string;
  containers: { name: string; id: string }[];
}

export async function runPodRestore(
  plan: RestorePlan,
  steps: PodRestoreSteps,
  signal?: AbortSignal,
): Promise<PodRestoreResult> {
  const checkDeadline = (): void => {
    if (signal?.aborted) throw deadlineExceeded('RestorePod: the call was cancelled or its deadline passed');
  };
  let podId: string | undefined;
  const made: { name: string; id: string }[] = [];
  try {
    checkDeadline();
    podId = await steps.runSandbox(plan.sandbox);
    for (const [n, step] of plan.containers.entries()) {
      checkDeadline();
      made.push({ name: step.name, id: await steps.createContainer(podId, step, n) });
    }
    checkDeadline();
    return { podId, containers: made };
  } catch (err) {
    const left: string[] = [];
    for (const c of [...made].reverse())
      await steps
        .removeContainer(c.id)
        .catch((e: unknown) => left.push(`container ${c.name}: ${errMessage(e)}`));
    if (podId !== undefined)
      await steps.removeSandbox(podId).catch((e: unknown) => left.push(`pod sandbox: ${errMessage(e)}`));
    if (left.length && err instanceof Error) err.message += `; then the rollback failed (${left.join('; ')})`;
    throw err;
  }
}
