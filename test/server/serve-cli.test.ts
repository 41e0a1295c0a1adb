/**
 * `actor-sync serve` (SPEC §4): prints its URL once listening, answers, and shuts down gracefully when
 * its signal aborts; usage errors exit 2 with one line.
 */
import { describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/cli/serve.js';
import { TrainingDataSchema } from '../../src/server/schema.js';
import { runCli, startCli } from '../helpers/cli.js';
import { seedActor0000, tempRoot } from '../helpers/root.js';
import { rawRequest, serve } from '../helpers/server.js';

const LISTENING = /^listening on (http:\/\/127\.0\.0\.1:(\d+))\n$/;

describe('serveCommand', () => {
  it('prints its URL when listening; on abort closes the server and returns 0', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const controller = new AbortController();
    let stdout = '';
    let stderr = '';
    let listening!: (url: string) => void;
    const url = new Promise<string>((resolve) => (listening = resolve));
    const context = {
      stdout: { write: (text: string) => ((stdout += text), listening(text)) },
      stderr: { write: (text: string) => (stderr += text) },
      signal: controller.signal,
    };
    const done = serveCommand({ root, host: '127.0.0.1', port: 0, workers: 1 }, context);
    const base = LISTENING.exec(await url)![1]!;

    const data = TrainingDataSchema.parse(await (await fetch(`${base}/api/actors/0/training-data`)).json());
    expect(data).toMatchObject({ total_count: 17, synced_count: 12, local_only_count: 5 });

    controller.abort();
    expect(await done).toBe(0);
    expect(stdout).toMatch(LISTENING);
    expect(stderr).toBe('actor-sync serve: shutting down (requests in flight finish first)\n');
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('the real CLI', () => {
  it('serve --port 0 prints its URL on stdout, answers, and exits on SIGTERM without a stack', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const run = startCli(['serve', '--root', root, '--port', '0', '--workers', '1']);
    const line = await new Promise<string>((resolve, reject) => {
      let seen = '';
      run.child.stdout!.on('data', (chunk: string) => {
        seen += chunk;
        if (seen.endsWith('\n')) resolve(seen);
      });
      run.done.then((result) => reject(new Error(`serve exited early: ${JSON.stringify(result)}`)), reject);
    });
    const base = LISTENING.exec(line)![1]!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const data = TrainingDataSchema.parse(
      await (await fetch(`${base}/api/actors/0000_european_16_male/training-data`)).json(),
    );
    expect(data.total_count).toBe(17);

    run.child.kill('SIGTERM');
    const result = await run.done;
    expect(result.signal, 'it exited by itself, not killed by the signal').toBeNull();
    // SIGTERM is serve's normal stop: it exits 0 (other commands exit 143).
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(line);
    expect(result.stderr).toContain('shutting down');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('usage errors exit 2: a missing root, a bad port, a port in use', async () => {
    const missing = await runCli(['serve', '--root', '/nonexistent/actor-sync-root', '--port', '0']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('actor-sync: /nonexistent/actor-sync-root does not exist; check --root\n');

    const root = await tempRoot();
    for (const port of ['65536', '-1', 'http', '1.5']) {
      const bad = await runCli(['serve', '--root', root, '--port', port]);
      expect(bad.code, port).toBe(2);
      expect(bad.stderr).toMatch(/--port/);
    }

    const taken = await serve(root);
    const busy = await runCli(['serve', '--root', root, '--port', String(taken.port), '--workers', '1']);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toBe(
      `actor-sync: cannot listen on 127.0.0.1:${taken.port} (EADDRINUSE); choose another --host or --port\n`,
    );
    expect(busy.stdout).toBe('');
  });

  it('--help lists its options', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--root', '--host', '--port', '--workers', '--allowed-host', '--cors-origin'])
      expect(help.stdout).toContain(flag);
  });

  it('--allowed-host (repeatable) and --cors-origin reach the server; malformed values exit 2 with one line', async () => {
    const root = await tempRoot();
    const run = startCli([
      'serve',
      '--root',
      root,
      '--port',
      '0',
      '--workers',
      '1',
      '--allowed-host',
      'studio.local',
      '--allowed-host',
      'studio.lan',
      '--cors-origin',
      'http://localhost:5173',
    ]);
    const line = await new Promise<string>((resolve, reject) => {
      run.child.stdout!.on('data', (chunk: string) => chunk.endsWith('\n') && resolve(chunk));
      run.done.then((result) => reject(new Error(`serve exited early: ${JSON.stringify(result)}`)), reject);
    });
    const port = Number(LISTENING.exec(line)![2]);
    const server = { port } as Parameters<typeof rawRequest>[0];
    for (const host of ['studio.local', 'studio.lan:5173']) {
      const answer = await rawRequest(server, '/api/actors', {
        headers: { Host: host, Origin: 'http://localhost:5173' },
      });
      expect([answer.status, answer.headers['access-control-allow-origin']], host).toEqual([
        200,
        'http://localhost:5173',
      ]);
    }
    expect((await rawRequest(server, '/api/actors', { headers: { Host: 'evil.example' } })).status).toBe(421);
    run.child.kill('SIGTERM');
    expect((await run.done).code).toBe(0);

    for (const args of [
      ['--allowed-host', 'http://studio.local'],
      ['--allowed-host', 'studio.local:5173'],
      ['--cors-origin', 'localhost:5173'],
      ['--cors-origin', 'http://localhost:5173/app'],
      ['--cors-origin', 'ftp://x'],
    ]) {
      const bad = await runCli(['serve', '--root', root, '--port', '0', ...args]);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr, args.join(' ')).toMatch(
        new RegExp(`^error: option '${args[0]} <\\w+>' argument .* is invalid\\. expected [^\\n]*\\n$`),
      );
    }
  });
});
