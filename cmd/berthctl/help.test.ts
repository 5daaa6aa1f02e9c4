// berthctl --help and COMMAND --help, in-process (no daemon needed: help never connects).
import { run } from './main';

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, { write: (s) => (out += s) }, { write: (s) => (err += s) });
  return { code, out, err };
}

describe('help', () => {
  it('lists every command with the global flags', async () => {
    const top = await ctl('--help');
    expect(top.code).toBe(0);
    expect(top.out).toContain('--runtime-endpoint');
    expect(top.out).toContain('--image-endpoint');
    expect(top.out).toContain('--config FILE');
    expect(top.out).toContain('CONTAINER_RUNTIME_ENDPOINT');
    const names = [...(top.out.split('Commands:\n')[1] ?? '').matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
    for (const n of [
      'stats',
      'statsp',
      'events',
      'update',
      'run',
      'rmi',
      'pull',
      'images',
      'ps',
      'pods',
      'logs',
    ])
      expect(names).toContain(n);
  });

  it("shows each command's flags with COMMAND --help or -h", async () => {
    const top = await ctl('--help');
    const names = [...(top.out.split('Commands:\n')[1] ?? '').matchAll(/^ {2}(\S+)/gm)].map(
      (m) => m[1] ?? '',
    );
    const flags: Record<string, string[]> = {
      stats: ['--watch', '--seconds', '-o table|json|yaml', '--all', '--pod'],
      statsp: ['--watch', '--label'],
      events: ['-o table|json|yaml'],
      update: ['--cpu-shares', '--cpu-quota', '--cpu-period', '--memory', '--cpuset-cpus', '--cpuset-mems'],
      rmi: ['--prune', '--all'],
      pull: ['--progress', '--creds'],
      run: ['--runtime', '--no-pull'],
      images: ['-o table|json|yaml'],
      inspect: ['-o json|yaml'],
    };
    for (const n of names) {
      for (const h of ['--help', '-h']) {
        const r = await ctl('-r', '/nonexistent.sock', n, h);
        expect([n, r.code, r.err]).toEqual([n, 0, '']);
        expect(r.out).toMatch(new RegExp(`^usage: berthctl \\[GLOBAL FLAGS\\] ${n}\\b`));
        for (const f of flags[n] ?? []) expect([n, r.out.includes(f)]).toEqual([n, true]);
      }
    }
  });

  it("leaves exec's own -h to the command it runs", async () => {
    // `exec ID ls -h` is not a help request: berthctl tries to connect (and fails quickly here)
    const r = await ctl('-r', '/nonexistent.sock', '-t', '0.2', 'exec', 'abc', 'ls', '-h');
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot connect to /nonexistent.sock');
  });

  it('refuses an unknown global flag or command', async () => {
    expect((await ctl('--bogus', 'version')).code).toBe(2);
    expect((await ctl('nosuch')).err).toContain('unknown command "nosuch"');
  });
});
