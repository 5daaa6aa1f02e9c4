// The README's "Status of the CRI" table names every RPC of Berth's proto (43 on the cri-api main
// line), each with a status, and no RPC the proto does not have.
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const read = (p: string): string => fs.readFileSync(path.join(ROOT, p), 'utf8');

function protoRpcs(): string[] {
  return [...read('api/runtime/v1/api.proto').matchAll(/^\s*rpc\s+(\w+)\s*\(/gm)].map((m) => m[1]!);
}

/** The table's rows: the RPC names in the first cell and the status cell. */
function tableRows(): { rpcs: string[]; status: string }[] {
  const readme = read('README.md');
  const start = readme.indexOf('## Status of the CRI');
  const end = readme.indexOf('\n## ', start + 1);
  return readme
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*(RPCs|-+)\s*\|/.test(l))
    .map((l) => {
      const [first = '', status = ''] = l.slice(1, -1).split(' | ');
      return { rpcs: [...first.matchAll(/`(\w+)`/g)].map((m) => m[1]!), status: status.trim() };
    });
}

test('every RPC of the proto is in the README CRI status table once, with a status', () => {
  const rpcs = protoRpcs();
  expect(rpcs).toHaveLength(43);
  const rows = tableRows();
  const listed = rows.flatMap((r) => r.rpcs);
  expect([...listed].sort()).toEqual([...rpcs].sort());
  for (const r of rows) expect(r.status).toMatch(/^(done|partly|not implemented)\b/);
});
