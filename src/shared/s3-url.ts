/**
 * S3 URLs → `{ bucket, key, filename }` (SPEC §2). Every URL a legacy file or a manifest holds goes
 * through here, so this is where an unsafe filename is stopped before it can name a local path.
 *
 * The path is read from the raw string, not from WHATWG `URL`: `URL` silently resolves `..` and
 * `%2e%2e` segments (`/a/..` becomes `/`), which would turn a hostile key into an innocent one.
 * `URL` is used only to validate the host of http(s) URLs.
 */

/** Where one S3 object lives, as named by its URL. */
export interface S3Location {
  /** The URL as given, query and fragment included. */
  url: string;
  bucket: string;
  /**
   * The object's key: an https URL's path percent-decoded, without the leading `/` (nor, path-style, the
   * bucket segment); an `s3://` URI's path as it is (the aws CLI and the console write raw keys).
   */
  key: string;
  /** The key's last segment: the name the image has in `training_data/`. */
  filename: string;
  /** The region the URL's host names (`<bucket>.s3.us-west-1.amazonaws.com`), when it names one. */
  region?: string;
}

/** A URL that does not name one S3 object with a safe filename. The message names the URL. */
export class UrlError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`URL ${quote(url)} ${reason}`);
    this.name = 'UrlError';
  }
}

/**
 * True for a filename that is safe to use inside a `training_data` folder: non-empty, not `.` or
 * `..`, and without `/`, `\` or NUL.
 * @example isSafeFilename('0000_x_1.jpg') // true
 * @example isSafeFilename('..') // false
 */
export function isSafeFilename(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

/**
 * Parses every URL form of SPEC §2: virtual-hosted (`<bucket>.s3.<region>.amazonaws.com`,
 * `<bucket>.s3-<region>…`, `<bucket>.s3.amazonaws.com`, `s3-accelerate`, `dualstack`), path-style
 * (`s3.<region>.amazonaws.com/<bucket>/…`), `s3://<bucket>/<key>`, and any other http(s) host as a
 * path-style custom endpoint. Query and fragment are ignored (presigned URLs); `+` stays a `+` in the key
 * (see {@link keyCandidates}). An `s3://` URI is a raw key, never percent-decoded: `s3://b/50%_off.jpg`
 * is the key `50%_off.jpg`.
 * @throws {UrlError} naming the URL and the reason.
 * @example parseS3Url('https://b.s3.us-west-1.amazonaws.com/a/x%20y.jpg') // { url, bucket: 'b', key: 'a/x y.jpg', filename: 'x y.jpg', region: 'us-west-1' }
 */
export function parseS3Url(url: string): S3Location {
  const fail = (reason: string): never => {
    throw new UrlError(url, reason);
  };
  // WHATWG parsing drops tabs and newlines and trims spaces; we would then read a different path.
  if (/[\0-\x1f\x7f]/.test(url)) fail('contains a control character');
  if (url.trim() !== url) fail('has leading or trailing whitespace');

  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) fail('is not a URL');
  if (scheme !== 'https' && scheme !== 'http' && scheme !== 's3') {
    fail(`has an unsupported scheme "${scheme}:" (expected https:, http: or s3:)`);
  }
  const rest = url.slice(scheme!.length + 1);
  if (!rest.startsWith('//')) fail(`is not a URL (expected "${scheme}://" at the start)`);

  // Query and fragment go first so that a `/` or `\` inside a presigned signature is not path.
  const beforeQuery = rest.slice(2).split(/[?#]/, 1)[0]!;
  if (beforeQuery.includes('\\')) fail('contains a backslash, which browsers read as "/"');
  const slash = beforeQuery.indexOf('/');
  const authority = slash === -1 ? beforeQuery : beforeQuery.slice(0, slash);
  const rawPath = slash === -1 ? '' : beforeQuery.slice(slash + 1);

  const host = scheme === 's3' ? undefined : hostOf(scheme!, authority, url);
  const { bucket, rawKey } =
    host === undefined ? { bucket: authority, rawKey: rawPath } : splitHttp(host, rawPath, fail);
  if (bucket === '') fail('names no bucket');
  if (!/^[a-z0-9._-]+$/i.test(bucket) || bucket === '.' || bucket === '..') {
    fail(`has an invalid bucket name "${bucket}"`);
  }
  if (rawKey === '') fail('names no object (the key is empty)');
  if (rawKey.endsWith('/')) fail('names a folder, not an object (the key ends with "/")');

  const raw = scheme === 's3';
  const key = raw ? rawKey : decode(rawKey, fail);
  const rawFilename = rawKey.slice(rawKey.lastIndexOf('/') + 1);
  const filename = raw ? rawFilename : decode(rawFilename, fail);
  if (!isSafeFilename(filename)) fail(`has an unsafe filename ${quote(filename)}`);
  if (key.includes('\0')) fail('has a NUL character in its key');
  // A `..` anywhere in the key would climb out of the actor's folder wherever the key becomes a path.
  if (key.split(/[/\\]/).some((segment) => segment === '.' || segment === '..')) {
    fail(`has a "." or ".." segment in its key ${quote(key)}`);
  }
  const region = host?.region;
  return region === undefined ? { url, bucket, key, filename } : { url, bucket, key, filename, region };
}

/**
 * The keys S3 may hold for a URL, the key itself first: an https URL's `+` may stand for a space (the S3
 * console writes a space as `+`), and a filename may be stored in either Unicode normal form (macOS
 * writes NFD). Which one exists is for a listing to say, never a guess.
 * @example keyCandidates(parseS3Url('https://b.s3.amazonaws.com/a+b.jpg')) // ['a+b.jpg', 'a b.jpg']
 */
export function keyCandidates(location: Pick<S3Location, 'url' | 'key'>): string[] {
  const spellings = [location.key];
  const spaced = spaceSpelling(location.url);
  if (spaced !== undefined) spellings.push(spaced);
  // An ASCII key is its own normal forms (asked for each of a scale-10 run's 49 000 keys, twice).
  if (spaced === undefined && ASCII.test(location.key)) return spellings;
  return [...new Set(spellings.flatMap((key) => [key, key.normalize('NFC'), key.normalize('NFD')]))];
}

const ASCII = /^[\0-\x7f]*$/;

/**
 * The key an https URL names when each literal `+` of its path is a space. Only a raw `+` may be a space:
 * `%2B` says plainly it is a plus, so `x%2By.jpg` never stands for `x y.jpg`.
 */
function spaceSpelling(url: string): string | undefined {
  if (/^s3:/i.test(url)) return undefined;
  const beforeQuery = url.split(/[?#]/, 1)[0]!;
  const pathStart = beforeQuery.indexOf('/', beforeQuery.indexOf('//') + 2);
  if (pathStart === -1 || !beforeQuery.includes('+', pathStart)) return undefined;
  return parseS3Url(beforeQuery.slice(0, pathStart) + beforeQuery.slice(pathStart).replace(/\+/g, '%20')).key;
}

/** An AWS region name: `us-west-1`, `ap-southeast-2`, `us-gov-west-1`, `cn-north-1`. */
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d+$/;

/** The region an AWS host names (`s3.us-west-1`, `s3-us-west-1`, `s3.dualstack.us-west-1`, with or without a bucket). */
function regionOfHost(host: string): string | undefined {
  if (host === 's3-external-1.amazonaws.com' || host.endsWith('.s3-external-1.amazonaws.com')) return 'us-east-1';
  const named = /(?:^|\.)s3(?:\.dualstack)?[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host)?.[1];
  return named !== undefined && REGION.test(named) ? named : undefined;
}

/**
 * One string per S3 object, whatever form its URL takes (virtual-hosted, path-style, `s3://`, another
 * region's host, a presigned query): the store (AWS, or another endpoint's host and port), the bucket and
 * the key. A URL that does not parse is its own identity.
 * @example objectIdOf('s3://b/k/x.jpg') === objectIdOf('https://b.s3.us-west-1.amazonaws.com/k/x.jpg') // true
 * @example objectIdOf('http://minio:9000/b/k/x.jpg') === objectIdOf('s3://b/k/x.jpg') // false
 */
export function objectIdOf(url: string): string {
  try {
    const { bucket, key } = parseS3Url(url);
    return `${storeOf(url)}\0${bucket}/${key}`;
  } catch {
    return `\0${url}`;
  }
}

/** AWS for `s3://` and AWS hosts (the China partition apart); any other endpoint by its host and port. */
function storeOf(url: string): string {
  if (/^s3:/i.test(url)) return 'aws';
  const { host, hostname } = new URL(url);
  if (/(?:^|\.)amazonaws\.com\.cn$/.test(hostname)) return 'aws-cn';
  return /(?:^|\.)amazonaws\.com$/.test(hostname) ? 'aws' : host;
}

/** True when two URLs name the same S3 object (the same store, bucket and key), in whatever forms. */
export function sameObject(a: string, b: string): boolean {
  return a === b || objectIdOf(a) === objectIdOf(b);
}

/** What an http(s) URL's host says: the bucket (virtual-hosted), the region, or why it names no S3 endpoint. */
interface Host {
  bucket?: string;
  region?: string;
  error?: string;
}

const hosts = new Map<string, Host>();

/**
 * What the host of `scheme://authority` says, as WHATWG `URL` reads the host (the path plays no part in it),
 * remembered: a run reads thousands of URLs on a few hosts. Parsing each whole URL twice, and matching its
 * host again, took 40 % of parseS3Url's time (49 000 URLs at scale 10: 0.5 s → 0.3 s).
 */
function hostOf(scheme: string, authority: string, url: string): Host {
  // With no authority WHATWG takes the host from the path (`https:///b/k` → `b`): read as the whole URL.
  if (authority === '') return readHost(url);
  const origin = `${scheme}://${authority}`;
  let host = hosts.get(origin);
  if (host === undefined) {
    host = readHost(origin);
    if (hosts.size >= 1000) hosts.clear();
    hosts.set(origin, host);
  }
  return host;
}

function readHost(url: string): Host {
  let name: string;
  try {
    name = new URL(url).hostname;
  } catch {
    return { error: 'is not a URL (its host cannot be parsed)' };
  }
  if (name === '') return { error: 'has no host' };
  const region = regionOfHost(name);
  if (!AWS_S3_ENDPOINT.test(name)) {
    const virtual = AWS_VIRTUAL_HOSTED.exec(name);
    if (virtual) return { bucket: virtual[1]!, region };
    // Reading, say, an EC2 host as a custom endpoint would invent a bucket from its first segment.
    if (/(?:^|\.)amazonaws\.com(?:\.cn)?$/.test(name))
      return { error: `has host "${name}", which is not an S3 endpoint` };
  }
  return { region };
}

/** Host forms of AWS S3 itself (no bucket in the name): `s3`, `s3.<region>`, `s3-<region>`, … */
const AWS_S3_ENDPOINT =
  /^s3(?:-accelerate(?:\.dualstack)?|\.dualstack\.[a-z0-9-]+|[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?$/;
const AWS_VIRTUAL_HOSTED =
  /^(.+)\.(s3(?:-accelerate(?:\.dualstack)?|\.dualstack\.[a-z0-9-]+|[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?)$/;

/** Bucket and raw key of an http(s) URL: virtual-hosted on AWS hosts that carry a bucket, path-style elsewhere. */
function splitHttp(host: Host, rawPath: string, fail: (reason: string) => never): { bucket: string; rawKey: string } {
  if (host.error !== undefined) fail(host.error);
  if (host.bucket !== undefined) return { bucket: host.bucket, rawKey: rawPath };
  const slash = rawPath.indexOf('/');
  const rawBucket = slash === -1 ? rawPath : rawPath.slice(0, slash);
  return { bucket: decode(rawBucket, fail), rawKey: slash === -1 ? '' : rawPath.slice(slash + 1) };
}

/** Strict percent-decoding: a stray `%` or an escape that is not UTF-8 is an error, never kept as is. */
function decode(raw: string, fail: (reason: string) => never): string {
  if (!raw.includes('%')) return raw;
  if (/%(?![0-9a-f]{2})/i.test(raw)) fail('has invalid percent-encoding (a "%" not followed by two hex digits)');
  try {
    return decodeURIComponent(raw);
  } catch {
    return fail('has invalid percent-encoding (the escapes are not UTF-8)');
  }
}

/** Quotes a value for a message; long ones (data: URLs, presigned queries) are cut so the log stays readable. */
function quote(value: string): string {
  const shown = value.length > 300 ? `${value.slice(0, 300)}…` : value;
  return JSON.stringify(shown);
}
