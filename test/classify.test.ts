import { describe, expect, it } from 'vitest';
import {
  classify,
  naturalCompare,
  statusOf,
  statisticsOf,
  toMb,
  type ClassifyInput,
  type LocalFile,
  type RemoteFact,
} from '../src/shared/classify.js';
import { TrainingEntrySchema, type TrainingEntry } from '../src/manifest/schema.js';
import { fakeMd5 as md5 } from './helpers/values.js';

const ACTOR = '0000_european_16_male';
const BASE = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${ACTOR}`;
/** 2025-10-17T14:30:00.123456789Z in nanoseconds. */
const MTIME_NS = '1760711400123456789';

/** A distinct, valid MD5 (32 lower-case hex digits) per number. */

function name(suffix: string): string {
  return `${ACTOR}_${suffix}`;
}

function urlOf(filename: string): string {
  return `${BASE}/${filename}`;
}

function local(filename: string, hash: string, extra: Partial<LocalFile> = {}): LocalFile {
  return {
    filename,
    localPath: `data/actors/${ACTOR}/training_data/${filename}`,
    size: 1000,
    mtimeNs: MTIME_NS,
    inode: 42,
    md5: hash,
    ...extra,
  };
}

function run(input: Partial<ClassifyInput>) {
  return classify({ local: [], previous: [], legacyUrls: new Map(), promptUrls: new Map(), ...input });
}

function only(entries: TrainingEntry[], filename: string): TrainingEntry {
  const found = entries.filter((entry) => entry.filename === filename);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe("the seed's actor 0000 example", () => {
  // response.json lists 12 URLs; the folder holds 17 images, `_4.jpg` a byte-for-byte copy of `_4.png`.
  const listed = [
    ...[4, 6, 8, 9, 10, 11, 12, 13].map((i) => name(`${i}.png`)),
    ...[14, 15, 16, 17].map((i) => name(`${i}.jpg`)),
  ];
  const unlisted = [0, 1, 2, 3].map((i) => name(`${i}.png`));
  // Sizes add up to 5 570 000 bytes: 14 × 326 000 + 330 000 (`_0.png`) + 2 × 338 000 (`_4.png` and its copy).
  const sizeOf = (filename: string) =>
    filename === name('0.png') ? 330_000 : filename.startsWith(name('4.')) ? 338_000 : 326_000;
  const hashOf = (i: number) => md5(i + 1);
  const files: LocalFile[] = [...listed, ...unlisted].map((filename, i) =>
    local(filename, hashOf(i), { size: sizeOf(filename) }),
  );
  files.push(
    local(name('4.jpg'), files.find((file) => file.filename === name('4.png'))!.md5, { size: sizeOf(name('4.jpg')) }),
  );
  const legacyUrls = new Map(listed.map((filename) => [filename, urlOf(filename)]));

  const result = run({ local: files, legacyUrls });

  it('gives 17 entries: 12 synced, 5 local_only, no conflict', () => {
    expect(files).toHaveLength(17);
    expect(result.conflicts).toEqual([]);
    expect(result.entries).toHaveLength(17);
    expect(
      result.entries
        .filter((e) => e.status === 'synced')
        .map((e) => e.filename)
        .sort(),
    ).toEqual([...listed].sort());
    expect(result.entries.filter((e) => e.status === 'local_only').map((e) => e.filename)).toEqual([
      name('0.png'),
      name('1.png'),
      name('2.png'),
      name('3.png'),
      name('4.jpg'),
    ]);
  });

  it('sorts the entries in natural order (_2 before _10)', () => {
    expect(result.entries.map((e) => e.filename)).toEqual(
      [
        ...[
          '0.png',
          '1.png',
          '2.png',
          '3.png',
          '4.jpg',
          '4.png',
          '6.png',
          '8.png',
          '9.png',
          '10.png',
          '11.png',
          '12.png',
          '13.png',
        ],
        ...['14.jpg', '15.jpg', '16.jpg', '17.jpg'],
      ].map(name),
    );
  });

  it('marks the copy of _4.png as its duplicate: the one with a URL is the original', () => {
    expect(only(result.entries, name('4.jpg')).duplicate_of).toBe(name('4.png'));
    expect(only(result.entries, name('4.png'))).not.toHaveProperty('duplicate_of');
    expect(result.entries.filter((e) => e.duplicate_of !== undefined)).toHaveLength(1);
  });

  it('takes each URL from response.json and, S3 not asked, assumes the S3 copy is the local file', () => {
    const four = only(result.entries, name('4.png'));
    expect(four.s3_url).toBe(urlOf(name('4.png')));
    expect(four.s3_md5).toBe(four.md5_hash);
    const zero = only(result.entries, name('0.png'));
    expect(zero.s3_url).toBeNull();
    expect(zero.s3_md5).toBeNull();
  });

  it('counts 17 images, 12 synced, 5 local_only, 5 570 000 bytes = 5.31 MB', () => {
    expect(result.statistics).toEqual({
      training_images_count: 17,
      training_synced_count: 12,
      training_local_only_count: 5,
      training_s3_only_count: 0,
      training_out_of_sync_count: 0,
      training_missing_count: 0,
      training_data_size_bytes: 5_570_000,
      training_data_size_mb: 5.31,
    });
  });

  it('writes entries the manifest schema accepts', () => {
    for (const entry of result.entries) expect(TrainingEntrySchema.safeParse(entry).success).toBe(true);
  });

  it('gives the same entries when run again on the manifest it wrote (no response.json left)', () => {
    const again = run({ local: files, previous: result.entries });
    expect(again.entries).toEqual(result.entries);
    expect(again.statistics).toEqual(result.statistics);
  });
});

describe('one entry per filename in the union of every source', () => {
  it('joins local files, previous manifest entries, response.json URLs and prompt_metadata URLs', () => {
    const { entries } = run({
      local: [local(name('1.jpg'), md5(1))],
      previous: [{ filename: name('2.jpg'), s3_url: urlOf(name('2.jpg')), s3_md5: md5(2), status: 's3_only' }],
      legacyUrls: new Map([[name('3.jpg'), urlOf(name('3.jpg'))]]),
      promptUrls: new Map([[name('4.jpg'), urlOf(name('4.jpg'))]]),
    });
    expect(entries.map((e) => [e.filename, e.status])).toEqual([
      [name('1.jpg'), 'local_only'],
      [name('2.jpg'), 's3_only'],
      [name('3.jpg'), 's3_only'],
      [name('4.jpg'), 's3_only'],
    ]);
  });

  it('gives one entry for a filename named by every source at once', () => {
    const filename = name('1.jpg');
    const { entries } = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: urlOf(filename), s3_md5: md5(1) }],
      legacyUrls: new Map([[filename, urlOf(filename)]]),
      promptUrls: new Map([[filename, urlOf(filename)]]),
    });
    expect(entries).toHaveLength(1);
    expect(entries[0]!.status).toBe('synced');
  });

  it('drops a previous entry with neither a local file nor an S3 URL', () => {
    const { entries, statistics } = run({
      previous: [
        {
          filename: name('1.jpg'),
          local_path: `data/actors/${ACTOR}/training_data/${name('1.jpg')}`,
          s3_url: null,
          md5_hash: md5(1),
          status: 'local_only',
        },
      ],
    });
    expect(entries).toEqual([]);
    expect(statistics.training_images_count).toBe(0);
  });

  it('reads an empty s3_url as no URL: local_only with s3_url null, and dropped with no local file either', () => {
    const [withFile, without] = [name('1.jpg'), name('2.jpg')];
    const { entries } = run({
      local: [local(withFile, md5(1))],
      previous: [
        { filename: withFile, s3_url: '', s3_md5: md5(1), md5_hash: md5(1), status: 'synced' },
        { filename: without, s3_url: '', s3_md5: md5(2), status: 's3_only' },
      ],
      promptUrls: new Map([[without, '']]),
    });
    expect(entries).toEqual([
      expect.objectContaining({ filename: withFile, s3_url: null, s3_md5: null, status: 'local_only' }),
    ]);
  });

  it('takes a response.json URL for an entry whose s3_url is empty', () => {
    const filename = name('1.jpg');
    const { entries, conflicts } = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: '', md5_hash: md5(1), status: 'local_only' }],
      legacyUrls: new Map([[filename, urlOf(filename)]]),
    });
    expect(conflicts).toEqual([]);
    expect(entries).toEqual([expect.objectContaining({ filename, s3_url: urlOf(filename), status: 'synced' })]);
  });

  it('describes an S3-only image with no local facts', () => {
    const filename = name('1.jpg');
    const [entry] = run({ legacyUrls: new Map([[filename, urlOf(filename)]]) }).entries;
    expect(entry).toMatchObject({
      filename,
      local_path: null,
      size_bytes: null,
      size_mb: null,
      modified_timestamp: null,
      modified_date: null,
      md5_hash: null,
      s3_url: urlOf(filename),
      s3_md5: null,
      status: 's3_only',
      mtime_ns: null,
      inode: null,
    });
  });
});

describe('URL precedence: the manifest, then response.json, then prompt_metadata.json', () => {
  const filename = name('1.jpg');
  const file = local(filename, md5(1));
  const manifestUrl = urlOf(filename);
  const otherUrl = `https://storyboard-user-files.s3.us-west-1.amazonaws.com/custom_actor/${ACTOR}/training_data/${filename}`;
  const promptUrl = `s3://prompt-bucket/${ACTOR}/${filename}`;

  it("keeps the manifest's URL over prompt_metadata's", () => {
    const { entries, conflicts } = run({
      local: [file],
      previous: [{ filename, s3_url: manifestUrl, s3_md5: md5(1) }],
      promptUrls: new Map([[filename, promptUrl]]),
    });
    expect(conflicts).toEqual([]);
    expect(entries[0]!.s3_url).toBe(manifestUrl);
  });

  it("takes response.json's URL over prompt_metadata's", () => {
    const { entries } = run({
      local: [file],
      legacyUrls: new Map([[filename, otherUrl]]),
      promptUrls: new Map([[filename, promptUrl]]),
    });
    expect(entries[0]!.s3_url).toBe(otherUrl);
  });

  it("takes prompt_metadata's URL when it is the only one", () => {
    const { entries } = run({ local: [file], promptUrls: new Map([[filename, promptUrl]]) });
    expect(entries[0]!.s3_url).toBe(promptUrl);
  });

  it('takes a response.json URL for an entry the manifest holds without one', () => {
    const { entries, conflicts } = run({
      local: [file],
      previous: [{ filename, s3_url: null, md5_hash: md5(1), status: 'local_only' }],
      legacyUrls: new Map([[filename, otherUrl]]),
    });
    expect(conflicts).toEqual([]);
    expect(entries[0]).toMatchObject({ s3_url: otherUrl, s3_md5: md5(1), status: 'synced' });
  });

  it('agrees quietly when response.json gives the same URL as the manifest', () => {
    const { conflicts } = run({
      local: [file],
      previous: [{ filename, s3_url: manifestUrl, s3_md5: md5(1) }],
      legacyUrls: new Map([[filename, manifestUrl]]),
    });
    expect(conflicts).toEqual([]);
  });

  it("agrees quietly when response.json names the same object in another form (s3://): the manifest's form is kept", () => {
    const sameObject = `s3://story-boards-assets/system_actors/training_data/${ACTOR}/${filename}`;
    const { entries, conflicts } = run({
      local: [file],
      previous: [{ filename, s3_url: manifestUrl, s3_md5: md5(1) }],
      legacyUrls: new Map([[filename, sameObject]]),
    });
    expect(conflicts).toEqual([]);
    expect(entries[0]).toMatchObject({ s3_url: manifestUrl, status: 'synced' });
  });

  it('is a conflict naming the file and both URLs when response.json disagrees with the manifest', () => {
    const { conflicts } = run({
      local: [file, local(name('2.jpg'), md5(2))],
      previous: [{ filename, s3_url: manifestUrl, s3_md5: md5(1) }],
      legacyUrls: new Map([[filename, otherUrl]]),
    });
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]!.filename).toBe(filename);
    expect(conflicts[0]!.reason).toContain(otherUrl);
    expect(conflicts[0]!.reason).toContain(manifestUrl);
    expect(conflicts[0]!.reason).toContain('response.json');
  });
});

describe('keys another tool added to an entry', () => {
  it('are kept, a key named __proto__ included', () => {
    const filename = name('1.jpg');
    const before = JSON.parse(
      `{"filename": "${filename}", "s3_url": "${urlOf(filename)}", "s3_md5": "${md5(1)}", "rating": 5, "__proto__": {"x": 1}}`,
    );
    const [entry] = run({ local: [local(filename, md5(1))], previous: [before] }).entries;
    expect(entry).toMatchObject({ rating: 5 });
    expect(Object.hasOwn(entry!, '__proto__')).toBe(true);
    expect(JSON.parse(JSON.stringify(entry)).__proto__).toEqual({ x: 1 });
    expect(Object.getPrototypeOf(entry)).toBe(Object.prototype);
  });
});

describe('s3_md5: the MD5 of the S3 object as last known', () => {
  const filename = name('1.jpg');
  const url = urlOf(filename);

  it('is kept from the previous entry for the same URL', () => {
    const [entry] = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: url, s3_md5: md5(1), md5_hash: md5(1) }],
    }).entries;
    expect(entry).toMatchObject({ s3_md5: md5(1), status: 'synced' });
  });

  it('is kept for an S3-only image whose local file is gone', () => {
    const [entry] = run({ previous: [{ filename, s3_url: url, s3_md5: md5(7), md5_hash: md5(7) }] }).entries;
    expect(entry).toMatchObject({ md5_hash: null, s3_md5: md5(7), status: 's3_only' });
  });

  it('is assumed equal to the local MD5 the first time, when unknown', () => {
    const [entry] = run({ local: [local(filename, md5(3))], legacyUrls: new Map([[filename, url]]) }).entries;
    expect(entry).toMatchObject({ md5_hash: md5(3), s3_md5: md5(3), status: 'synced' });
  });

  it('stays unknown when the local file of an S3-only image appears: out_of_sync, never assumed synced', () => {
    // The URL is in the manifest already (it came without a local file): S3 may hold other bytes.
    const [entry] = run({
      local: [local(filename, md5(4))],
      previous: [{ filename, s3_url: url, s3_md5: null, md5_hash: null, status: 's3_only' }],
    }).entries;
    expect(entry).toMatchObject({ md5_hash: md5(4), s3_md5: null, status: 'out_of_sync' });
  });

  it('stays unknown for an object a remote check could not verify, on the runs after it', () => {
    const [entry] = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: url, s3_md5: null, md5_hash: md5(1), status: 'out_of_sync' }],
      legacyUrls: new Map([[filename, url]]),
    }).entries;
    expect(entry).toMatchObject({ s3_md5: null, status: 'out_of_sync' });
  });

  it('is assumed equal to the local MD5 for an entry another tool wrote without one', () => {
    const [entry] = run({ local: [local(filename, md5(5))], previous: [{ filename, s3_url: url }] }).entries;
    expect(entry).toMatchObject({ md5_hash: md5(5), s3_md5: md5(5), status: 'synced' });
  });

  it('stays null for an S3-only image never verified', () => {
    const [entry] = run({ legacyUrls: new Map([[filename, url]]) }).entries;
    expect(entry).toMatchObject({ s3_md5: null, status: 's3_only' });
  });

  it('makes a local file changed since it was synced out_of_sync', () => {
    const { entries, statistics } = run({
      local: [local(filename, md5(2))],
      previous: [{ filename, s3_url: url, s3_md5: md5(1), md5_hash: md5(1), status: 'synced' }],
    });
    expect(entries[0]).toMatchObject({ md5_hash: md5(2), s3_md5: md5(1), status: 'out_of_sync' });
    expect(statistics.training_out_of_sync_count).toBe(1);
  });

  it('is not the previous s3_md5 when the URL came from a different source than the previous entry', () => {
    // The previous entry had no URL; its s3_md5 (if any) cannot describe the object now named by response.json.
    const [entry] = run({
      local: [local(filename, md5(2))],
      previous: [{ filename, s3_url: null, s3_md5: md5(9), md5_hash: md5(2) }],
      legacyUrls: new Map([[filename, url]]),
    }).entries;
    expect(entry).toMatchObject({ s3_url: url, s3_md5: md5(2), status: 'synced' });
  });
});

describe('s3_exists: false, a remote finding kept until the next check', () => {
  const filename = name('1.jpg');
  const url = urlOf(filename);
  const absent: TrainingEntry = {
    filename,
    s3_url: url,
    s3_md5: null,
    s3_exists: false,
    md5_hash: md5(1),
    status: 'local_only',
  };

  it('makes an image with a local file local_only, and is kept with its URL', () => {
    const { entries, statistics } = run({ local: [local(filename, md5(1))], previous: [absent] });
    expect(entries[0]).toMatchObject({ s3_url: url, s3_exists: false, s3_md5: null, status: 'local_only' });
    expect(statistics.training_local_only_count).toBe(1);
  });

  it('makes an image without a local file missing, and is kept', () => {
    const { entries, statistics } = run({ previous: [{ ...absent, md5_hash: null, status: 'missing' }] });
    expect(entries[0]).toMatchObject({ s3_url: url, s3_exists: false, status: 'missing' });
    expect(statistics.training_missing_count).toBe(1);
  });

  it('still holds when response.json names the same URL', () => {
    const { entries } = run({ previous: [{ ...absent, md5_hash: null }], legacyUrls: new Map([[filename, url]]) });
    expect(entries[0]).toMatchObject({ s3_exists: false, status: 'missing' });
  });

  it('is absent from an entry S3 is taken to hold', () => {
    const [entry] = run({ local: [local(filename, md5(1))], legacyUrls: new Map([[filename, url]]) }).entries;
    expect(entry).not.toHaveProperty('s3_exists');
  });

  it('is not carried over from an entry that had no URL', () => {
    const [entry] = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: null, s3_exists: false, md5_hash: md5(1) }],
      legacyUrls: new Map([[filename, url]]),
    }).entries;
    expect(entry).not.toHaveProperty('s3_exists');
    expect(entry!.status).toBe('synced');
  });
});

describe('remote facts override what the manifest last knew', () => {
  const filename = name('1.jpg');
  const url = urlOf(filename);
  const remote = (fact: RemoteFact) => new Map([[url, fact]]);

  it('a found object with the local MD5 makes the image synced, even after s3_exists: false', () => {
    const { entries } = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: url, s3_md5: null, s3_exists: false, status: 'local_only' }],
      remote: remote({ exists: true, md5: md5(1) }),
    });
    expect(entries[0]).toMatchObject({ s3_md5: md5(1), status: 'synced' });
    expect(entries[0]).not.toHaveProperty('s3_exists');
  });

  it('a found object with another MD5 makes the image out_of_sync, over the recorded s3_md5', () => {
    const { entries } = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: url, s3_md5: md5(1), md5_hash: md5(1), status: 'synced' }],
      remote: remote({ exists: true, md5: md5(2) }),
    });
    expect(entries[0]).toMatchObject({ s3_md5: md5(2), status: 'out_of_sync' });
  });

  it('no object at the URL makes a local image local_only with s3_exists: false', () => {
    const { entries } = run({
      local: [local(filename, md5(1))],
      legacyUrls: new Map([[filename, url]]),
      remote: remote({ exists: false, md5: null }),
    });
    expect(entries[0]).toMatchObject({ s3_url: url, s3_exists: false, s3_md5: null, status: 'local_only' });
  });

  it('no object at the URL makes an image without a local file missing', () => {
    const { entries } = run({
      previous: [{ filename, s3_url: url, s3_md5: md5(1), status: 's3_only' }],
      remote: remote({ exists: false, md5: null }),
    });
    expect(entries[0]).toMatchObject({ s3_exists: false, status: 'missing' });
  });

  it('a found object for an image without a local file makes it s3_only with the MD5 S3 gave', () => {
    const { entries } = run({ legacyUrls: new Map([[filename, url]]), remote: remote({ exists: true, md5: md5(5) }) });
    expect(entries[0]).toMatchObject({ s3_md5: md5(5), status: 's3_only' });
  });

  it('a fact about another URL changes nothing', () => {
    const { entries } = run({
      local: [local(filename, md5(1))],
      legacyUrls: new Map([[filename, url]]),
      remote: new Map([[`${url}.other`, { exists: false, md5: null }]]),
    });
    expect(entries[0]).toMatchObject({ s3_md5: md5(1), status: 'synced' });
  });
});

describe('local facts', () => {
  it('records size, MB, mtime (seconds with ms, ISO date), the nanosecond stat token as a string, and the inode', () => {
    const filename = name('1.jpg');
    const [entry] = run({ local: [local(filename, md5(1), { size: 328_059, inode: 123_456 })] }).entries;
    expect(entry).toMatchObject({
      filename,
      local_path: `data/actors/${ACTOR}/training_data/${filename}`,
      size_bytes: 328_059,
      size_mb: 0.31,
      modified_timestamp: 1760711400.123,
      modified_date: '2025-10-17T14:30:00.123Z',
      md5_hash: md5(1),
      s3_url: null,
      s3_md5: null,
      status: 'local_only',
      mtime_ns: MTIME_NS,
      inode: 123_456,
    });
    expect(typeof entry!.mtime_ns).toBe('string');
  });

  it('describes the local file now, not what the manifest recorded', () => {
    const filename = name('1.jpg');
    const [entry] = run({
      local: [local(filename, md5(2), { size: 2000, mtimeNs: '1700000000000000000', inode: 7 })],
      previous: [
        {
          filename,
          size_bytes: 1000,
          md5_hash: md5(1),
          mtime_ns: MTIME_NS,
          inode: 42,
          modified_timestamp: 1760711400.123,
          status: 'local_only',
        },
      ],
    }).entries;
    expect(entry).toMatchObject({
      size_bytes: 2000,
      md5_hash: md5(2),
      mtime_ns: '1700000000000000000',
      inode: 7,
      modified_timestamp: 1700000000,
    });
  });
});

describe('fields of a previous entry', () => {
  const filename = name('1.jpg');
  const url = urlOf(filename);

  it('keeps unknown extra keys another tool added', () => {
    const [entry] = run({
      local: [local(filename, md5(1))],
      previous: [
        { filename, s3_url: url, s3_md5: md5(1), good: true, s3_etag: `"${md5(1)}"`, notes: { by: 'studio' } },
      ],
    }).entries;
    expect(entry).toMatchObject({ good: true, s3_etag: `"${md5(1)}"`, notes: { by: 'studio' }, status: 'synced' });
  });

  it("records a remote finding's CRC64NVME checksum as s3_crc64nvme, keeps it while the ETag is the same, drops it when the object changed", () => {
    const base = { local: [local(filename, md5(1))] };
    const checked = (fact: RemoteFact, previous: TrainingEntry[] = [{ filename, s3_url: url }]) =>
      run({ ...base, previous, remote: new Map([[url, fact]]) }).entries[0]!;
    const first = checked({ exists: true, md5: md5(1), etag: 'e1', crc64nvme: 'rosUhgp5mIg=' });
    expect(first).toMatchObject({ s3_md5: md5(1), s3_etag: 'e1', s3_crc64nvme: 'rosUhgp5mIg=', status: 'synced' });
    expect(TrainingEntrySchema.parse(first)).toEqual(first);
    // Without a remote check, and with a listing that finds the same ETag: kept.
    expect(run({ ...base, previous: [first] }).entries[0]).toEqual(first);
    expect(checked({ exists: true, md5: md5(1), etag: 'e1' }, [first]).s3_crc64nvme).toBe('rosUhgp5mIg=');
    // Another ETag without a checksum, or no object: the old checksum is not the object's.
    expect(checked({ exists: true, md5: md5(2), etag: 'e2' }, [first])).not.toHaveProperty('s3_crc64nvme');
    expect(checked({ exists: false, md5: null }, [first])).not.toHaveProperty('s3_crc64nvme');
  });

  it('recomputes a stale duplicate_of and a stale s3_exists instead of keeping them', () => {
    const [entry] = run({
      local: [local(filename, md5(1))],
      previous: [{ filename, s3_url: url, s3_md5: md5(1), duplicate_of: name('0.jpg'), s3_exists: true }],
    }).entries;
    expect(entry).not.toHaveProperty('duplicate_of');
    expect(entry).not.toHaveProperty('s3_exists');
  });
});

describe('duplicate_of', () => {
  it('points the later image (natural order) to the first when neither has a URL', () => {
    const { entries } = run({
      local: [local(name('10.jpg'), md5(1)), local(name('2.jpg'), md5(1)), local(name('3.jpg'), md5(2))],
    });
    expect(only(entries, name('10.jpg')).duplicate_of).toBe(name('2.jpg'));
    expect(only(entries, name('2.jpg'))).not.toHaveProperty('duplicate_of');
    expect(only(entries, name('3.jpg'))).not.toHaveProperty('duplicate_of');
  });

  it('points every copy to the one original', () => {
    const { entries } = run({
      local: [local(name('1.jpg'), md5(1)), local(name('2.jpg'), md5(1)), local(name('3.jpg'), md5(1))],
      legacyUrls: new Map([[name('3.jpg'), urlOf(name('3.jpg'))]]),
    });
    expect(entries.map((e) => e.duplicate_of ?? null)).toEqual([name('3.jpg'), name('3.jpg'), null]);
  });

  it('is not set between S3-only images, which have no local MD5', () => {
    const { entries } = run({
      previous: [
        { filename: name('1.jpg'), s3_url: urlOf(name('1.jpg')), s3_md5: md5(1) },
        { filename: name('2.jpg'), s3_url: urlOf(name('2.jpg')), s3_md5: md5(1) },
      ],
    });
    expect(entries.every((e) => e.duplicate_of === undefined)).toBe(true);
  });
});

describe('statistics', () => {
  it('counts each status and sums local sizes only', () => {
    const url = (n: number) => urlOf(name(`${n}.jpg`));
    const { statistics } = run({
      local: [
        local(name('1.jpg'), md5(1), { size: 100 }),
        local(name('2.jpg'), md5(2), { size: 200 }),
        local(name('3.jpg'), md5(3), { size: 300 }),
        local(name('4.jpg'), md5(4), { size: 400 }),
      ],
      previous: [
        { filename: name('2.jpg'), s3_url: url(2), s3_md5: md5(2) },
        { filename: name('3.jpg'), s3_url: url(3), s3_md5: md5(99) },
        { filename: name('4.jpg'), s3_url: url(4), s3_exists: false },
        { filename: name('5.jpg'), s3_url: url(5), s3_md5: md5(5), size_bytes: 9999 },
        { filename: name('6.jpg'), s3_url: url(6), s3_exists: false },
      ],
    });
    expect(statistics).toEqual({
      training_images_count: 6,
      training_synced_count: 1,
      training_local_only_count: 2,
      training_s3_only_count: 1,
      training_out_of_sync_count: 1,
      training_missing_count: 1,
      training_data_size_bytes: 1000,
      training_data_size_mb: 0,
    });
  });

  it('is all zeros for an actor with nothing', () => {
    expect(statisticsOf([])).toEqual({
      training_images_count: 0,
      training_synced_count: 0,
      training_local_only_count: 0,
      training_s3_only_count: 0,
      training_out_of_sync_count: 0,
      training_missing_count: 0,
      training_data_size_bytes: 0,
      training_data_size_mb: 0,
    });
  });

  it.each([
    [5_570_000, 5.31],
    [328_059, 0.31],
    [1_048_576, 1],
    [0, 0],
    [5_242, 0], // 0.004999… MiB
    [5_243, 0.01], // 0.0050001… MiB
  ])('toMb(%s) is %s: MiB with two decimals', (bytes, mb) => {
    expect(toMb(bytes)).toBe(mb);
  });
});

describe('statusOf truth table', () => {
  const URL = urlOf(name('1.jpg'));
  const A = md5(1);
  const B = md5(2);
  it.each([
    // local, S3 URL, s3_exists, md5_hash, s3_md5 → status
    [true, true, true, A, A, 'synced'],
    [true, true, true, A, B, 'out_of_sync'],
    [true, true, true, A, null, 'out_of_sync'],
    [true, true, false, A, A, 'local_only'],
    [true, true, false, A, null, 'local_only'],
    [true, false, true, A, null, 'local_only'],
    [true, false, false, A, null, 'local_only'],
    [false, true, true, null, A, 's3_only'],
    [false, true, true, null, null, 's3_only'],
    [false, true, false, null, null, 'missing'],
    [false, false, true, null, null, null],
    [false, false, false, null, null, null],
  ] as const)(
    'local %s, URL %s, s3_exists %s, md5 %s, s3_md5 %s → %s',
    (isLocal, hasUrl, exists, hash, s3Hash, status) => {
      expect(statusOf(isLocal, hasUrl ? URL : null, exists, hash, s3Hash)).toBe(status);
    },
  );
});

describe('naturalCompare', () => {
  const names = [
    'a_10.jpg',
    'a_2.jpg',
    'a_1.jpg',
    'a_01.jpg',
    'a_001.jpg',
    'A_1.jpg',
    'a_1.JPG',
    'a_1.png',
    'a_2.png',
    'a_02.png',
    'b.jpg',
    'B.jpg',
    'é.jpg',
    'e\u0301.jpg',
    'e.jpg',
    'ｅ.jpg',
    'x_100.jpg',
    'x_99.jpg',
    'x_9.jpg',
    'x.jpg',
    'x .jpg',
    '',
    '0000_european_16_male_17.jpg',
    '0000_european_16_male_4.png',
    '0000_european_16_male_4.jpg',
  ];

  it('puts _2 before _10 and _9 before _99 before _100', () => {
    expect(naturalCompare('a_2.jpg', 'a_10.jpg')).toBeLessThan(0);
    expect(['x_100.jpg', 'x_9.jpg', 'x_99.jpg'].sort(naturalCompare)).toEqual(['x_9.jpg', 'x_99.jpg', 'x_100.jpg']);
  });

  it('is zero only for identical names', () => {
    for (const a of names) for (const b of names) expect(naturalCompare(a, b) === 0).toBe(a === b);
  });

  it('is antisymmetric', () => {
    for (const a of names)
      for (const b of names) expect(Math.sign(naturalCompare(a, b)) + Math.sign(naturalCompare(b, a))).toBe(0);
  });

  it('is transitive', () => {
    for (const a of names)
      for (const b of names)
        for (const c of names) {
          if (naturalCompare(a, b) < 0 && naturalCompare(b, c) < 0) expect(naturalCompare(a, c)).toBeLessThan(0);
        }
  });

  it('sorts the same whatever the input order', () => {
    const sorted = [...names].sort(naturalCompare);
    expect([...names].reverse().sort(naturalCompare)).toEqual(sorted);
    expect([...names.slice(7), ...names.slice(0, 7)].sort(naturalCompare)).toEqual(sorted);
  });
});
