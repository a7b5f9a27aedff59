// One SVG chart of a benchmark run: throughput (as a share of the bare-Node
// ceiling) and p99 latency, a row per scenario.

export interface ChartRow {
  name: string;
  requestsPerSecond: number;
  ratio: number;
  p99: number;
}

const xml = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderChart(rows: ChartRow[], title: string): string {
  const rowHeight = 30;
  const labelWidth = 370;
  const panelWidth = 200;
  const gap = 160;
  const top = 60;
  const height = top + rows.length * rowHeight + 20;
  const width = labelWidth + 2 * panelWidth + gap + 90;
  const maxP99 = Math.max(...rows.map((r) => r.p99), 1);
  const bars = rows.map((row, i) => {
    const y = top + i * rowHeight;
    const throughput = Math.max(1, Math.min(1, row.ratio) * panelWidth);
    const latency = Math.max(1, (row.p99 / maxP99) * panelWidth);
    const x2 = labelWidth + panelWidth + gap;
    return [
      `<text x="${labelWidth - 10}" y="${y + 19}" text-anchor="end">${xml(row.name)}</text>`,
      `<rect x="${labelWidth}" y="${y + 6}" width="${throughput.toFixed(1)}" height="18" fill="#4e79a7"/>`,
      `<text x="${labelWidth + throughput + 6}" y="${y + 19}">${Math.round(row.requestsPerSecond).toLocaleString("en-US")}/s (${(row.ratio * 100).toFixed(0)}%)</text>`,
      `<rect x="${x2}" y="${y + 6}" width="${latency.toFixed(1)}" height="18" fill="#e15759"/>`,
      `<text x="${x2 + latency + 6}" y="${y + 19}">${row.p99} ms</text>`,
    ].join("\n  ");
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
  <rect width="100%" height="100%" fill="white"/>
  <text x="10" y="22" font-size="15" font-weight="bold">${xml(title)}</text>
  <text x="${labelWidth}" y="${top - 10}" font-weight="bold">requests/s (share of bare node:http)</text>
  <text x="${labelWidth + panelWidth + gap}" y="${top - 10}" font-weight="bold">p99 latency</text>
  ${bars.join("\n  ")}
</svg>
`;
}
