/**
 * `npm run bench:remote`: with `--latency MS`, over a modelled link against rclone's two strategies
 * (remote-link.ts); without it, against s3rver on loopback (remote-s3rver.ts).
 */
const linked = process.argv.includes('--latency');
await import(linked ? './remote-link.js' : './remote-s3rver.js');
