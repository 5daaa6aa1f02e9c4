// Pieces every berthctl command shares.
export interface Out {
  write(s: string): void;
}

/** A wrong invocation: berthctl prints the usage line and exits 2. */
export class UsageError extends Error {}

export const DEFAULT_ENDPOINT = 'unix:///run/berth/berth.sock';
