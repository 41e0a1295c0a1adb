/**
 * The single writer (SPEC §3, invariant 1): every manifest, `response.json` and pulled image reaches disk
 * through `commitFile`, so a reader or a crash at any instant sees the old file or the new one.
 *
 * write-file-atomic does temp file + fsync + rename + cleanup; it never fsyncs the folder, so a power loss
 * just after the rename could still bring the old name back. `fsyncDirectory` closes that gap.
 */
import fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import writeFileAtomic from 'write-file-atomic';
import { SYNC_CACHE_FILE } from '../cache-path.js';
import { IMAGE_EXTENSION } from '../discover.js';

/** A commit that did not complete. `code`/`syscall` are those of the failed system call. */
export class CommitError extends Error {
  readonly code: string | undefined;
  readonly syscall: string | undefined;
  /** The message without the target's path in front (for a report that names the file already). */
  readonly reason: string;
  constructor(
    readonly target: string,
    /**
     * True when only the folder fsync failed: the target already holds the new content, but it may not
     * survive a power loss, so nothing may rely on it (no `response.json` may be retired because of it).
     */
    readonly replaced: boolean,
    cause: unknown,
  ) {
    const errno = cause as NodeJS.ErrnoException;
    const why = errno?.message ?? String(cause);
    const reason = replaced
      ? `written, but the folder could not be synced (${why}); the new content may not survive a power loss. Check the disk, then run again.`
      : errno?.code === 'ENAMETOOLONG'
        ? // Retrying cannot help, and the error names the temp file, not the target: say what is too long.
          `its name is too long for the file system: ${Buffer.byteLength(basename(target))} bytes, and up to 11 more for the temp file written beside it (most file systems allow 255); left unchanged`
        : `could not be written (${why}); the file was left unchanged. Check free space and permissions, then run again.`;
    super(`${target}: ${reason}`, { cause });
    this.reason = reason;
    this.name = 'CommitError';
    this.code = errno?.code;
    this.syscall = errno?.syscall;
  }
}

/**
 * Writes `data` to `target` atomically and durably: a temp file beside it, fsync, rename over the target,
 * then fsync of the folder. An existing target's mode (and, as root, owner) is kept.
 *
 * On failure the original is byte-identical, the temp file is removed, and a {@link CommitError} carrying
 * the errno `code` is thrown. The one exception is a failed folder fsync, which happens after the rename:
 * then the target already holds the new content and the error has `replaced: true`.
 *
 * @example await commitFile('data/actor_manifests/0000_manifest.json', JSON.stringify(manifest, null, 2) + '\n');
 */
export async function commitFile(target: string, data: string | Uint8Array): Promise<void> {
  try {
    // A fresh options object each time: the library writes the target's mode and owner into it.
    await writeFileAtomic(target, data as string | Buffer, {});
  } catch (error) {
    throw new CommitError(target, false, error);
  }
  try {
    // The library renames over the target's real path, so that is the folder whose entry changed. The
    // native realpath is one thread-pool request; the JavaScript one is an lstat round trip per component.
    const real = await promisify(fs.realpath.native)(target);
    await fsyncDirectoryShared(dirname(real));
  } catch (error) {
    throw new CommitError(target, true, error);
  }
}

/**
 * Makes the entries of `dir` durable: a rename or unlink in it survives a power loss once this resolves.
 * Filesystems that cannot sync a folder (EINVAL/ENOTSUP; Windows cannot open one) are accepted as is,
 * since nothing more can be done there.
 */
async function fsyncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  // The callback API, looked up at call time like write-file-atomic does, so one fault-injection seam
  // (a spy on `fs.open`/`fs.fsync`) covers every step of a commit.
  const fd = await promisify(fs.open)(dir, 'r');
  try {
    await promisify(fs.fsync)(fd).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EINVAL' && error.code !== 'ENOTSUP') throw error;
    });
  } finally {
    await promisify(fs.close)(fd);
  }
}

/** Makes a file's bytes durable (fsync), whoever wrote them. */
export async function fsyncFile(path: string): Promise<void> {
  const fd = await promisify(fs.open)(path, 'r');
  try {
    await promisify(fs.fsync)(fd);
  } finally {
    await promisify(fs.close)(fd);
  }
}

interface FolderSyncState {
  running?: Promise<void>;
  queued?: Promise<void>;
}

const folderSyncs = new Map<string, FolderSyncState>();

/**
 * Group commit: resolves after an fsync of `dir` that started after this call. Commits landing in one
 * folder while its fsync runs share the next one, so a batch of manifests costs a few folder fsyncs
 * instead of one each, and each commit is still durable when its promise resolves.
 */
export function fsyncDirectoryShared(dir: string): Promise<void> {
  let state = folderSyncs.get(dir);
  if (!state) folderSyncs.set(dir, (state = {}));
  const folder = state;
  const start = (): Promise<void> => {
    const run: Promise<void> = fsyncDirectory(dir).finally(() => {
      if (folder.running === run) folder.running = undefined;
    });
    folder.running = run;
    return run;
  };
  if (!folder.running) return start();
  folder.queued ??= folder.running
    .catch(() => undefined)
    .then(() => {
      folder.queued = undefined;
      return start();
    });
  return folder.queued;
}

/**
 * The kinds of file this tool commits: `<id>_manifest.json`, `response.json` (restore-legacy), training
 * images (pull) and the sync cache. Temp names of anything else are never ours to delete.
 */
function isCommitTarget(name: string): boolean {
  if (SYNC_CACHE_FILE.test(name)) return true;
  if (name.startsWith('.')) return false;
  return name.endsWith('_manifest.json') || name === 'response.json' || IMAGE_EXTENSION.test(name);
}

/** write-file-atomic's suffix: `.` + an unsigned 32-bit MurmurHash3 printed in decimal (no leading zero). */
const TEMP_SUFFIX = /^(.+)\.(0|[1-9][0-9]{0,9})$/;
const UINT32_MAX = 0xffff_ffff;

/**
 * True when `name` is a temp file write-file-atomic makes while committing one of our targets:
 * `<target>.<n>` where `<target>` is a manifest (`*_manifest.json`), `response.json`, a training image or the sync cache,
 * and `<n>` is the library's MurmurHash3 of (pid, thread id, counter) — a decimal uint32, not hex.
 * `0000_manifest.json`, `x.jpg`, `notes.json.bak` and `notes.json.1` are not.
 */
export function isTempFileName(name: string): boolean {
  return tempTargetOf(name) !== undefined;
}

/** The target a temp file name belongs to (`0000_manifest.json.123` → `0000_manifest.json`), if it is one. */
function tempTargetOf(name: string): string | undefined {
  const match = TEMP_SUFFIX.exec(name);
  if (!match) return undefined;
  const [, target = '', hash = ''] = match;
  return Number(hash) <= UINT32_MAX && isCommitTarget(target) ? target : undefined;
}

export interface RemoveStaleTempsOptions {
  /**
   * Only temp files of targets this run owns (by the target's file name). Shards sharing one manifests
   * folder must pass this: another shard's temp file may be a commit in flight, not a leftover.
   */
  owns?: (targetName: string) => boolean;
}

/**
 * Removes the temp files a crashed writer left in `dir` (see {@link isTempFileName}); only regular files,
 * never a symlink or folder. Call it while holding the run lock and before this run starts committing,
 * since a temp file of a live commit looks the same. A missing `dir` has nothing to clean.
 *
 * @returns the paths removed.
 */
export async function removeStaleTemps(dir: string, options: RemoveStaleTempsOptions = {}): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const target = entry.isFile() ? tempTargetOf(entry.name) : undefined;
    if (target === undefined || (options.owns && !options.owns(target))) continue;
    const path = join(dir, entry.name);
    try {
      await fs.promises.unlink(path);
      removed.push(path);
    } catch (error) {
      // Gone already: whoever removed it did our job.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return removed;
}
