/** An SVG chart of hash throughput by worker count, with md5sum's line, for the README. */
import type { ThroughputReport } from '../src/engine/throughput.js';

export function throughputChart(report: ThroughputReport, title: string): string {
  const width = 560;
  const height = 300;
  const left = 60;
  const bottom = 40;
  const top = 40;
  const plotW = width - left - 20;
  const plotH = height - top - bottom;
  const values = report.runs.map((r) => r.mbPerSecond);
  const md5 = report.md5sum?.mbPerSecond;
  const max = Math.max(...values, md5 ?? 0) * 1.15;
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const slot = plotW / report.runs.length;
  const bars = report.runs
    .map((run, i) => {
      const x = left + i * slot + slot * 0.2;
      const w = slot * 0.6;
      return (
        `<rect x="${x.toFixed(1)}" y="${y(run.mbPerSecond).toFixed(1)}" width="${w.toFixed(1)}" height="${(top + plotH - y(run.mbPerSecond)).toFixed(1)}" fill="#4a7bd0"/>` +
        `<text x="${(x + w / 2).toFixed(1)}" y="${(y(run.mbPerSecond) - 6).toFixed(1)}" text-anchor="middle" font-size="12">${run.mbPerSecond.toFixed(0)}</text>` +
        `<text x="${(x + w / 2).toFixed(1)}" y="${height - bottom + 18}" text-anchor="middle" font-size="12">${run.workers}</text>`
      );
    })
    .join('');
  const md5Line =
    md5 === undefined
      ? ''
      : `<line x1="${left}" x2="${left + plotW}" y1="${y(md5).toFixed(1)}" y2="${y(md5).toFixed(1)}" stroke="#d04a4a" stroke-width="2" stroke-dasharray="6 4"/>` +
        `<text x="${left + plotW}" y="${(y(md5) - 6).toFixed(1)}" text-anchor="end" font-size="12" fill="#d04a4a">md5sum -P${report.md5sum!.workers}: ${md5.toFixed(0)} MB/s</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>
<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>
<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>
<text x="16" y="${top + plotH / 2}" font-size="12" transform="rotate(-90 16 ${top + plotH / 2})" text-anchor="middle">MB/s (median)</text>
<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle" font-size="12">worker threads</text>
${bars}${md5Line}
</svg>
`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
