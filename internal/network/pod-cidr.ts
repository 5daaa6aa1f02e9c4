// The pod CIDR kubelet hands over with UpdateRuntimeConfig. Persisted under the daemon's root so a
// restarted berthd gives CNI the same ranges before kubelet says it again.
import * as path from 'node:path';
import { atomicWriteJson, readJsonIfExists } from '../util/fs';
import { podCidrRanges } from './cni';

export const POD_CIDR_FILE = 'runtime-config.json';

interface Persisted {
  podCidr: string;
}

export class PodCidrStore {
  private value = '';
  private readonly file: string;

  /** `apply` hands the CIDR(s) to CNI (CniManager.setPodCidr). */
  constructor(
    root: string,
    private readonly apply: (cidr: string) => void,
  ) {
    this.file = path.join(root, POD_CIDR_FILE);
  }

  get(): string {
    return this.value;
  }

  /** Reads the persisted CIDR (if any) and applies it. A bad file is ignored, not fatal. */
  async load(): Promise<string> {
    const rec = await readJsonIfExists<Persisted>(this.file).catch(() => undefined);
    const cidr = typeof rec?.podCidr === 'string' ? rec.podCidr : '';
    try {
      podCidrRanges(cidr);
    } catch {
      return this.value;
    }
    this.value = cidr;
    if (cidr) this.apply(cidr);
    return cidr;
  }

  /** Validates (INVALID_ARGUMENT on a malformed CIDR), persists, then applies. '' clears it. */
  async set(cidr: string): Promise<void> {
    const v = cidr.trim();
    podCidrRanges(v);
    if (v === this.value) return;
    await atomicWriteJson(this.file, { podCidr: v } satisfies Persisted);
    this.value = v;
    this.apply(v);
  }
}
