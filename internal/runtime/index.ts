// The OCI runtime driver (conmon + runc). Everything else in Berth goes through OciRuntime.
export { OciRuntime } from './oci-runtime';
export { RuntimePaths, ctlFifo, winszFifo, isValidRuntimeId } from './paths';
export { RuncError, isRuncNotFound, isRuncNotRunning, runcErrorMessage } from './runc-error';
export { DEFAULT_EXEC_OUTPUT_CAP } from './exec-sync';
export { criuUnavailable, parseFeatures, type RuntimeBinaryFeatures } from './features';
export type {
  RuntimeOptions,
  CreateOptions,
  CreateResult,
  RuncState,
  RuncStatus,
  ExitInfo,
  LinuxResources,
  OciProcess,
  ExecSyncOptions,
  ExecSyncResult,
} from './types';
