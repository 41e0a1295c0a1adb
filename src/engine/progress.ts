/**
 * Progress on stderr: redrawn bars on a terminal (actors, bytes hashed, MB/s, ETA), a plain line every
 * few seconds anywhere else (CI logs, cron), nothing with `--quiet`. Never on stdout.
 */
import type cliProgress from 'cli-progress';
import type { ActorReport, ProgressSink } from './sync.js';

/** Seconds between plain progress lines off a terminal (CI logs, cron). */
const PLAIN_LINE_SECONDS = 5;

export interface ProgressOptions {
  label: string;
  quiet: boolean;
  stream?: NodeJS.WriteStream;
}

/** The progress for `options.stream`; cli-progress is loaded only for a terminal. */
export async function createProgress(options: ProgressOptions): Promise<ProgressSink | undefined> {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return undefined;
  if (!stream.isTTY) return new PlainLines(options.label, stream);
  const { default: cliProgress } = await import('cli-progress');
  return new Bars(cliProgress, options.label, stream);
}

class Counter {
  actors = 0;
  total = 0;
  /** Bytes hashed by the actors done. */
  private done = 0;
  /** Bytes the threads reported read, as they read them (a large file advances before its actor is done). */
  private read = 0;
  readonly started = performance.now();

  add(report: ActorReport): void {
    this.actors += 1;
    this.done += report.hashedBytes;
  }

  hashing(bytes: number): void {
    this.read += bytes;
  }

  /** Either count may be ahead of the other (reads are reported every few MB; a file read twice counts twice): the larger. */
  get bytes(): number {
    return Math.max(this.done, this.read);
  }

  mbPerSecond(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? this.bytes / 1048576 / seconds : 0;
  }
}

class Bars implements ProgressSink {
  private readonly counter = new Counter();
  private readonly bars: cliProgress.MultiBar;
  private actorBar?: cliProgress.SingleBar;
  private byteBar?: cliProgress.SingleBar;

  constructor(
    library: typeof cliProgress,
    private readonly label: string,
    stream: NodeJS.WriteStream,
  ) {
    this.bars = new library.MultiBar(
      {
        stream,
        hideCursor: true,
        clearOnComplete: true,
        format: '{label} |{bar}| {value}/{total} {unit} {extra}',
        barsize: 30,
      },
      library.Presets.shades_classic,
    );
  }

  start(actors: number): void {
    this.counter.total = actors;
    this.actorBar = this.bars.create(actors, 0, { label: this.label.padEnd(6), unit: 'actors', extra: 'ETA –' });
    this.byteBar = this.bars.create(
      0,
      0,
      { label: 'hashed', unit: '', extra: '' },
      { format: '{label} {mb} MB at {rate} MB/s' },
    );
  }

  actorDone(report: ActorReport): void {
    this.counter.add(report);
    const elapsed = (performance.now() - this.counter.started) / 1000;
    const left = this.counter.total - this.counter.actors;
    const eta = this.counter.actors > 0 ? Math.round((elapsed / this.counter.actors) * left) : 0;
    this.actorBar?.increment(1, { extra: `ETA ${eta}s` });
    this.showBytes();
  }

  hashing(bytes: number): void {
    this.counter.hashing(bytes);
    this.showBytes();
  }

  private showBytes(): void {
    this.byteBar?.update(0, {
      mb: (this.counter.bytes / 1048576).toFixed(1),
      rate: this.counter.mbPerSecond().toFixed(1),
    });
  }

  stop(): void {
    this.bars.stop();
  }
}

class PlainLines implements ProgressSink {
  private readonly counter = new Counter();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream,
  ) {}

  start(actors: number): void {
    this.counter.total = actors;
    this.timer = setInterval(() => this.line(), PLAIN_LINE_SECONDS * 1000);
    this.timer.unref();
  }

  actorDone(report: ActorReport): void {
    this.counter.add(report);
  }

  hashing(bytes: number): void {
    this.counter.hashing(bytes);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private line(): void {
    const c = this.counter;
    this.stream.write(
      `${this.label}: ${c.actors}/${c.total} actors, ${(c.bytes / 1048576).toFixed(1)} MB hashed, ${c.mbPerSecond().toFixed(1)} MB/s\n`,
    );
  }
}
