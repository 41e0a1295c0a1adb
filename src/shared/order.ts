/**
 * String order by UTF-16 code units, as `Array.prototype.sort` without a comparator: stable across
 * locales and machines, for keys and names that only need one fixed order. (S3's own order is UTF-8 bytes:
 * see `compareBytes` in s3/ranges.ts.)
 */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
