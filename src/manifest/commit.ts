/**
 * The single writer (SPEC §3, invariant 1): every manifest, `response.json` and pulled image reaches disk
 * through `commitFile`, so a reader or a crash at any instant sees the old file or the new one.
 *
 * write-file-atomic does temp file + fsync + rename + cleanup, but names its temp `<target>.<number>`, a
 * name a person's `x.json.1` or dated backup also has, so a crash's leftover could not be told from a
 * user's file. So it writes to a name that proves this tool made it ({@link tempNameFor}), which is then
 * renamed over the target; a crash's leftover is removed by the next run ({@link removeStaleTemps}) and
 * nothing else is. (`atomically`, which lets the temp name be chosen, re-raises SIGINT/SIGTERM from its
 * own handlers, which the CLI would take as a second signal and stop at once, mid-commit.)
 * write-file-atomic never fsyncs the folder, so a power loss just after the rename could still bring the
 * old name back. `fsyncDirectory` closes that gap.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import writeFileAtomic from 'write-file-atomic';

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
          `its name is too long for the file system: ${Buffer.byteLength(basename(target))} bytes, and the temp file written beside it needs ${TEMP_NAME_EXTRA} more (most file systems allow 255 in all); left unchanged`
        : `could not be written (${why}); the file was left unchanged. Check free space and permissions, then run again.`;
    super(`${target}: ${reason}`, { cause });
    this.reason = reason;
    this.name = 'CommitError';
    this.code = errno?.code;
    this.syscall = errno?.syscall;
  }
}

/**
 * Writes `data` to `target` atomically and durably: a temp file beside it (named by {@link tempNameFor}),
 * fsync, rename over the target, then fsync of the folder. An existing target's mode (and, as root, owner)
 * is kept; a target that is a symlink is replaced where it leads.
 *
 * On failure the original is byte-identical, the temp file is removed, and a {@link CommitError} carrying
 * the errno `code` is thrown. The one exception is a failed folder fsync, which happens after the rename:
 * then the target already holds the new content and the error has `replaced: true`.
 *
 * @example await commitFile('data/actor_manifests/0000_manifest.json', JSON.stringify(manifest, null, 2) + '\n');
 */
export async function commitFile(target: string, data: string | Uint8Array): Promise<void> {
  // The real path, as write-file-atomic would take it: the folder whose entry changes is the one to sync.
  // The native realpath is one thread-pool request; the JavaScript one is an lstat round trip per component.
  const real = await promisify(fs.realpath.native)(target).catch(() => target);
  const temp = join(dirname(real), tempNameFor(basename(real)));
  try {
    const stats = await promisify(fs.stat)(real).catch(() => undefined);
    // write-file-atomic keeps the mode and owner of the file it replaces; here that is the target, not the temp.
    const keep = stats && { mode: stats.mode, ...(process.getuid && { chown: { uid: stats.uid, gid: stats.gid } }) };
    await writeFileAtomic(temp, data as string | Buffer, { ...keep });
    await promisify(fs.rename)(temp, real);
  } catch (error) {
    await promisify(fs.unlink)(temp).catch(() => undefined);
    throw new CommitError(target, false, error);
  }
  try {
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
 * A fresh temp name for committing `targetName`: `.actor-sync-<pid>-<12 hex>.<targetName>.tmp`. Hidden, a
 * fixed prefix, the pid and 48 random bits: a name no person or common tool chooses, so a file named so is
 * one this tool made, and a crash's leftover may be removed.
 */
export function tempNameFor(targetName: string): string {
  return `.actor-sync-${process.pid}-${randomBytes(6).toString('hex')}.${targetName}.tmp`;
}

/**
 * Bytes a temp name adds to its target's: the prefix, a pid of up to 7 digits, the random part, `.tmp`, and
 * write-file-atomic's own `.<uint32>`. A target name longer than 255 minus this cannot be committed.
 */
const TEMP_NAME_EXTRA = '.actor-sync-'.length + 7 + '-'.length + 12 + '.'.length + '.tmp'.length + 11;

/** {@link tempNameFor}'s names, and write-file-atomic's own temp of one (`….tmp.<uint32 in decimal>`). */
const TEMP_NAME = /^\.actor-sync-[1-9][0-9]*-[0-9a-f]{12}\.(.+)\.tmp(?:\.(?:0|[1-9][0-9]{0,9}))?$/;

/**
 * True when `name` is a temp file this tool makes while committing a file (see {@link tempNameFor}).
 * A user's `notes.json.1`, `0001_manifest.json.20251017` or `x.png.tmp` is not.
 */
export function isTempFileName(name: string): boolean {
  return tempTargetOf(name) !== undefined;
}

/** The target a temp file name belongs to (`.actor-sync-7-0123456789ab.0000_manifest.json.tmp` → `0000_manifest.json`), if it is one. */
function tempTargetOf(name: string): string | undefined {
  return TEMP_NAME.exec(name)?.[1];
}

export interface RemoveStaleTempsOptions {
  /**
   * Only temp files of targets this run owns (by the target's file name). Shards sharing one manifests
   * folder must pass this: another shard's temp file may be a commit in flight, not a leftover.
   */
  owns?: (targetName: string) => boolean;
  /**
   * Only temp files last modified before this instant (ms since the epoch): pass the run lock's
   * `RunLock.takenMs`. A crashed run wrote its temp files before this run took the lock; one
   * written since is a commit in flight (of a run that lost its lock, say) and is left alone.
   */
  olderThanMs?: number;
}

/**
 * Removes the temp files a crashed writer left in `dir` (see {@link isTempFileName}); only regular files,
 * never a symlink or folder, and nothing this tool cannot prove it made. Call it while holding the run
 * lock and before this run starts committing, since a temp file of a live commit looks the same. A missing
 * `dir` has nothing to clean.
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
      if (options.olderThanMs !== undefined) {
        const stats = await fs.promises.lstat(path);
        // Not older (the same instant included, as git's racily-clean rule would have it): maybe not a leftover.
        if (!stats.isFile() || stats.mtimeMs >= options.olderThanMs) continue;
      }
      await fs.promises.unlink(path);
      removed.push(path);
    } catch (error) {
      // Gone already: whoever removed it did our job.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return removed;
}
