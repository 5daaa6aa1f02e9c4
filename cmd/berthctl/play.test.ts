// berthctl play's invocation checks (the manifest loading itself needs the built CLI: see
// test/integration/play.test.ts, and internal/play/load.ts for why).
import { sink } from '../../test/lab/fake-cri';
import { run } from './main';

async function play(...argv: string[]): Promise<{ code: number; err: string }> {
  const out = sink();
  const err = sink();
  const code = await run(['--endpoint', 'unix:///nonexistent/berth.sock', 'play', ...argv], out, err);
  return { code, err: err.text };
}

test.each([
  [[], /usage: berthctl play /],
  [['a.yaml', 'b.yaml'], /usage: berthctl play /],
  [['--down', '--dry-run', 'a.yaml'], /--down and --dry-run conflict/],
  [['--down', '--wait', 'a.yaml'], /--wait and --follow go with a play/],
  [['--dry-run', '--follow', 'a.yaml'], /--wait and --follow go with a play/],
  [['--wait-timeout', 'soon', 'a.yaml'], /--wait-timeout wants a non-negative integer/],
  [['--bogus', 'a.yaml'], /Unknown option '--bogus'/],
])('play %j is a usage error (exit 2)', async (argv, msg) => {
  const r = await play(...(argv as string[]));
  expect(r.code).toBe(2);
  expect(r.err).toMatch(msg);
});
