/**
 * MD5 of many files at once, four at a time in the lanes of md5x4.c's WebAssembly SIMD code (about 3 ×
 * node:crypto's one-stream MD5 on one core). This file is the driver: it opens each file, reads it straight
 * into its lane's buffer in the WebAssembly memory, pads its last block, and reads the digest out of the
 * lane's state. Synchronous, like the rest of a worker's hashing: nothing is left running when it returns.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { LANE_BYTES, LANES, loadEngine, type Engine } from '../src/md5/engine.js';

/** What one file came to: its digest with the stats taken before reading, or why there is none. */
export type LaneOutcome =
  | { ok: true; md5: string; stats: BigIntStats }
  /** The file changed while it was read (size or mtime moved, or more or fewer bytes than its size). */
  | { ok: false; changed: true }
  | { ok: false; changed: false; error: Error };

/** The state slot idle lanes write to (md5x4.c's `state[LANES]`). */
const SCRATCH = LANES;
const IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;

/** The error of a path that is not a regular file when it is opened (a FIFO or folder swapped in after the listing). */
export function notRegularFile(): Error {
  return Object.assign(new Error('not a regular file; skipped'), { code: 'ENOTFILE' });
}

/** True when a file changed while it was read: its size or mtime moved, or it gave more or fewer bytes than its size. */
export function changedWhileRead(before: BigIntStats, after: BigIntStats, bytesRead: number): boolean {
  return after.mtimeNs !== before.mtimeNs || after.size !== before.size || BigInt(bytesRead) !== before.size;
}

/** A file in a lane: its descriptor, its stats before reading, and where its next blocks are. */
interface Open {
  index: number;
  fd: number;
  before: BigIntStats;
  total: number;
  /** Offset of the lane's next unhashed block in its buffer, and the end of its hashable blocks. */
  at: number;
  end: number;
  /** The padding is in the buffer: when `at` reaches `end`, the lane's state is the digest. */
  padded: boolean;
}

/**
 * The MD5 of each file in `paths`, in order. A file that cannot be opened or read gets its error; one that
 * is not a regular file when opened gets an ENOTFILE error; one that changed while it was read is marked
 * so the caller can try again. `onRead` is told the bytes of each read as it is made (hashing's progress).
 */
export function md5FilesInLanes(paths: readonly string[], onRead?: (bytes: number) => void): LaneOutcome[] {
  const engine = loadEngine();
  if (!engine) throw new Error('md5x4: WebAssembly SIMD is not available in this thread');
  const run = new LaneRun(engine, paths, onRead);
  try {
    return run.hashAll();
  } finally {
    run.closeAll(); // only after something unforeseen threw: every lane is closed when hashAll returns
  }
}

/** One call's files flowing through the four lanes: which file each lane holds, and what each file came to. */
class LaneRun {
  private readonly outcomes: LaneOutcome[];
  private readonly lanes: (Open | null)[] = new Array(LANES).fill(null);
  private next = 0;

  constructor(
    private readonly e: Engine,
    private readonly paths: readonly string[],
    private readonly onRead: ((bytes: number) => void) | undefined,
  ) {
    this.outcomes = new Array(paths.length);
  }

  /** Keeps every lane busy until each file is hashed or has failed. */
  hashAll(): LaneOutcome[] {
    for (;;) {
      this.fillLanes();
      const blocks = this.readyBlocks();
      if (blocks === Infinity) return this.outcomes; // no lane holds a file, and none is left to open
      this.pointLanes();
      if (blocks > 0) this.e.run(blocks);
      this.advance(blocks);
    }
  }

  closeAll(): void {
    for (const file of this.lanes) if (file) closeSync(file.fd);
  }

  /** Opens a file in each empty lane, and reads more into each lane that has hashed all it held. */
  private fillLanes(): void {
    const { lanes, paths } = this;
    for (let lane = 0; lane < LANES; lane += 1) {
      while (lanes[lane] === null && this.next < paths.length) this.open(lane, this.next++);
      const file = lanes[lane];
      if (file && file.at === file.end && !file.padded) this.refill(lane, file);
    }
  }

  /** The blocks every busy lane has ready (the most one md5x4 call may hash); Infinity when all are idle. */
  private readyBlocks(): number {
    let blocks = Infinity;
    for (const file of this.lanes) if (file) blocks = Math.min(blocks, (file.end - file.at) >>> 6);
    return blocks;
  }

  /** Tells md5x4 where each lane's next block is and which state it updates. */
  private pointLanes(): void {
    const { e, lanes } = this;
    for (let lane = 0; lane < LANES; lane += 1) {
      const file = lanes[lane];
      // An idle lane hashes any readable bytes into the scratch state.
      e.words[e.ctlPtr + lane] = file ? e.laneBase[lane]! + file.at : e.laneBase[0]!;
      e.words[e.ctlState + lane] = file ? lane : SCRATCH;
    }
  }

  /** Moves each busy lane past the blocks just hashed, and finishes the files whose last block that was. */
  private advance(blocks: number): void {
    const { lanes } = this;
    for (let lane = 0; lane < LANES; lane += 1) {
      const file = lanes[lane];
      if (!file) continue;
      file.at += blocks << 6;
      if (file.at === file.end && file.padded) this.finish(lane, file);
    }
  }

  private open(lane: number, index: number): void {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO swapped in after the caller's stat must not block the open.
      fd = openSync(this.paths[index]!, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      this.fail(lane, index, error);
      return;
    }
    let before: BigIntStats;
    try {
      before = fstatSync(fd, { bigint: true });
    } catch (error) {
      closeSync(fd);
      this.fail(lane, index, error);
      return;
    }
    if (!before.isFile()) {
      closeSync(fd);
      this.fail(lane, index, notRegularFile());
      return;
    }
    const { e } = this;
    const state = e.state + lane * 4;
    for (let k = 0; k < 4; k += 1) e.words[state + k] = IV[k]!;
    this.lanes[lane] = { index, fd, before, total: 0, at: 0, end: 0, padded: false };
  }

  /** Reads the lane's next bytes into its buffer; at the end of the file, appends MD5's padding. */
  private refill(lane: number, file: Open): void {
    const base = this.e.laneBase[lane]!;
    let filled = 0;
    let eof = false;
    try {
      while (filled < LANE_BYTES) {
        const read = readSync(file.fd, this.e.bytes, base + filled, LANE_BYTES - filled, null);
        if (read === 0) {
          eof = true;
          break;
        }
        filled += read;
      }
    } catch (error) {
      this.fail(lane, file.index, error);
      return;
    }
    file.total += filled;
    if (filled > 0) this.onRead?.(filled);
    file.at = 0;
    if (!eof) {
      file.end = filled; // LANE_BYTES, a whole number of blocks
      return;
    }
    file.end = this.pad(base, filled, file.total);
    file.padded = true;
  }

  /** MD5's padding after the last `filled` bytes: 0x80, zeros to 56 bytes mod 64, then the length in bits (64-bit LE). */
  private pad(base: number, filled: number, total: number): number {
    const { e } = this;
    const tail = filled & 63;
    const end = filled - tail + (tail < 56 ? 64 : 128);
    e.bytes.fill(0, base + filled, base + end);
    e.bytes[base + filled] = 0x80;
    const bits = total * 8;
    e.words[(base + end - 8) >>> 2] = bits >>> 0;
    e.words[(base + end - 4) >>> 2] = Math.floor(bits / 2 ** 32);
    return end;
  }

  private finish(lane: number, file: Open): void {
    const { e } = this;
    const state = e.state + lane * 4;
    const digest = Buffer.alloc(16);
    for (let k = 0; k < 4; k += 1) digest.writeUInt32LE(e.words[state + k]!, k * 4);
    let after: BigIntStats;
    try {
      after = fstatSync(file.fd, { bigint: true });
    } catch (error) {
      this.fail(lane, file.index, error);
      return;
    }
    this.close(lane);
    const { before } = file;
    this.outcomes[file.index] = changedWhileRead(before, after, file.total)
      ? { ok: false, changed: true }
      : { ok: true, md5: digest.toString('hex'), stats: before };
  }

  private fail(lane: number, index: number, error: unknown): void {
    this.outcomes[index] = { ok: false, changed: false, error: error as Error };
    if (this.lanes[lane]) this.close(lane);
  }

  private close(lane: number): void {
    closeSync(this.lanes[lane]!.fd);
    this.lanes[lane] = null;
  }
}
