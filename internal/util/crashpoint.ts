// Named crash points for crash-safety tests: with BERTH_CRASH_AT=<name> in its environment,
// berthd kills itself with SIGKILL when it reaches that point, exactly as an operator's kill -9
// would at that moment. Without the variable this is one string comparison.
const target = process.env.BERTH_CRASH_AT;

export function crashPoint(name: string): void {
  if (target && target === name) process.kill(process.pid, 'SIGKILL');
}
