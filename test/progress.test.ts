/** Progress on stderr off a terminal: a plain line every few seconds, with the bytes hashed so far. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProgress } from '../src/engine/progress.js';
import type { ActorReport } from '../src/engine/sync.js';

afterEach(() => vi.useRealTimers());

function stream(): { lines: string[]; isTTY: false; write(text: string): boolean } {
  const lines: string[] = [];
  return { lines, isTTY: false, write: (text: string) => lines.push(text) > 0 };
}

describe('plain progress lines', () => {
  it('advance while a large file is hashed, before its actor is done, and never count its bytes twice', async () => {
    vi.useFakeTimers();
    const out = stream();
    const progress = (await createProgress({
      label: 'sync',
      quiet: false,
      stream: out as unknown as NodeJS.WriteStream,
    }))!;
    progress.start(1);
    for (let i = 0; i < 3; i += 1) progress.hashing!(8 << 20);
    vi.advanceTimersByTime(5000);
    expect(out.lines.at(-1)).toMatch(/^sync: 0\/1 actors, 24\.0 MB hashed, /);
    progress.actorDone({ hashedBytes: 30 << 20 } as ActorReport); // the whole file: the reads were part of it
    vi.advanceTimersByTime(5000);
    expect(out.lines.at(-1)).toMatch(/^sync: 1\/1 actors, 30\.0 MB hashed, /);
    progress.stop();
  });
});
