/**
 * The utilization benchmark's chart: one panel per resource (allocated vCPU,
 * RAM, Gemini tokens in the current window) over time, each against its
 * limit, as a self-contained SVG any browser or README renders.
 */

export interface ChartSeries {
  readonly title: string;
  readonly unit: string;
  readonly limit: number;
  /** [seconds since start, value] */
  readonly points: readonly (readonly [number, number])[];
}

const WIDTH = 900;
const PANEL_HEIGHT = 170;
const MARGIN = { left: 70, right: 20, top: 30, bottom: 30 };

export function utilizationChartSvg(title: string, series: readonly ChartSeries[]): string {
  const height = series.length * PANEL_HEIGHT + 40;
  const endSeconds = Math.max(1, ...series.flatMap((one) => one.points.map(([t]) => t)));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`,
  ];
  series.forEach((one, index) => {
    const top = 40 + index * PANEL_HEIGHT;
    const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
    const maxValue = Math.max(one.limit * 1.1, ...one.points.map(([, value]) => value), 1e-9);
    const x = (seconds: number) => MARGIN.left + (seconds / endSeconds) * plotWidth;
    const y = (value: number) => top + MARGIN.top + plotHeight - (value / maxValue) * plotHeight;
    parts.push(`<text x="${MARGIN.left}" y="${top + 18}" font-size="13">${escape(one.title)} (${escape(one.unit)})</text>`);
    // Axes and ticks.
    parts.push(`<line x1="${MARGIN.left}" y1="${y(0)}" x2="${MARGIN.left + plotWidth}" y2="${y(0)}" stroke="#444"/>`);
    parts.push(`<line x1="${MARGIN.left}" y1="${y(0)}" x2="${MARGIN.left}" y2="${y(maxValue)}" stroke="#444"/>`);
    for (const fraction of [0, 0.5, 1]) {
      const value = one.limit * fraction;
      parts.push(`<text x="${MARGIN.left - 6}" y="${y(value) + 4}" text-anchor="end">${formatNumber(value)}</text>`);
    }
    for (let i = 0; i <= 5; i += 1) {
      const seconds = (endSeconds * i) / 5;
      parts.push(`<text x="${x(seconds)}" y="${y(0) + 16}" text-anchor="middle">${seconds.toFixed(0)} s</text>`);
    }
    // The limit, then the allocation as a step line (it changes in steps).
    parts.push(`<line x1="${MARGIN.left}" y1="${y(one.limit)}" x2="${MARGIN.left + plotWidth}" y2="${y(one.limit)}" stroke="#c0392b" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${MARGIN.left + plotWidth}" y="${y(one.limit) - 4}" text-anchor="end" fill="#c0392b">limit ${formatNumber(one.limit)}</text>`);
    if (one.points.length > 0) {
      const path: string[] = [];
      one.points.forEach(([seconds, value], pointIndex) => {
        if (pointIndex === 0) path.push(`M${x(seconds).toFixed(1)},${y(value).toFixed(1)}`);
        else path.push(`H${x(seconds).toFixed(1)}V${y(value).toFixed(1)}`);
      });
      parts.push(`<path d="${path.join("")}" fill="none" stroke="#2463a6" stroke-width="1.5"/>`);
    }
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function formatNumber(value: number): string {
  if (value >= 1_000_000) return `${(value / 1_000_000).toFixed(1)}M`;
  if (value >= 10_000) return `${(value / 1000).toFixed(0)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
