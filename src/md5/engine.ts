/**
 * md5x4.c's WebAssembly module, compiled once per thread, and which MD5 engine that leaves: the worker
 * threads hash with it (workers/md5-lanes.ts); the main thread asks it only to say which engine ran.
 */
import { MD5X4_WASM } from './md5x4-wasm.js';

/** Files hashed at once, one per 32-bit lane of a SIMD vector. */
export const LANES = 4;
/** Bytes each lane reads at a time: four lanes of 256 KB per thread stay in a core's 1 MB L2 cache (bench/README.md). */
export const LANE_BYTES = 256 << 10;
/** A lane buffer holds a read and its padding (at most two blocks). */
export const LANE_STRIDE = LANE_BYTES + 128;

// The few WebAssembly globals used here (@types/node 20 does not declare them; TypeScript's DOM lib does).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
};

interface Md5x4Exports {
  memory: { buffer: ArrayBuffer };
  init(): void;
  md5x4(blocks: number): void;
  ctl_ptr_addr(): number;
  ctl_state_addr(): number;
  state_addr(): number;
  __heap_base: { value: number };
}

export interface Engine {
  run(blocks: number): void;
  bytes: Uint8Array;
  words: Uint32Array;
  ctlPtr: number;
  ctlState: number;
  state: number;
  laneBase: number[];
}

let engine: Engine | null | undefined;
let loadFailure = '';

/** The compiled module, once per thread; null where WebAssembly SIMD is not available (then node:crypto hashes). */
export function loadEngine(): Engine | null {
  if (engine !== undefined) return engine;
  try {
    const module = new WebAssembly.Module(Buffer.from(MD5X4_WASM, 'base64'));
    const exports = new WebAssembly.Instance(module).exports as unknown as Md5x4Exports;
    exports.init();
    const heap = Number(exports.__heap_base.value);
    const first = Math.ceil(heap / 64) * 64;
    if (first + LANES * LANE_STRIDE > exports.memory.buffer.byteLength)
      throw new Error('md5x4: memory too small for its lanes');
    // The memory is fixed in size (md5x4.c allocates nothing), so these views stay valid.
    engine = {
      run: (blocks) => exports.md5x4(blocks),
      bytes: new Uint8Array(exports.memory.buffer),
      words: new Uint32Array(exports.memory.buffer),
      ctlPtr: exports.ctl_ptr_addr() >>> 2,
      ctlState: exports.ctl_state_addr() >>> 2,
      state: exports.state_addr() >>> 2,
      laneBase: Array.from({ length: LANES }, (_, lane) => first + lane * LANE_STRIDE),
    };
  } catch (error) {
    loadFailure = error instanceof Error ? error.message : String(error);
    engine = null;
  }
  return engine;
}

/** True when this thread hashes with the WebAssembly lanes (false: node:crypto, one file at a time). */
export function lanesAvailable(): boolean {
  return loadEngine() !== null;
}

/** The MD5 that hashes: md5x4.c's four WebAssembly lanes, or node:crypto where they did not load. */
export type Md5Engine = 'wasm-lanes' | 'node:crypto';

/**
 * The engine the worker threads hash with, asked in the main thread: they run the same V8 and module, so
 * its answer is theirs (the threads fall back silently; the run says it here).
 */
export function md5Engine(): Md5Engine {
  return lanesAvailable() ? 'wasm-lanes' : 'node:crypto';
}

let warned = false;

/** The stderr line of a run whose WebAssembly MD5 did not load, the first time it is asked for; then ''. */
export function md5FallbackWarning(): string {
  if (warned || lanesAvailable()) return '';
  warned = true;
  return `actor-sync: warning: the WebAssembly MD5 did not load (${loadFailure}); hashing with node:crypto, about 3× slower\n`;
}
