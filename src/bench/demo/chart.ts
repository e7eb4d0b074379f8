/**
 * The demo's chart: one small panel per figure (their units differ, so no shared axis), each
 * with a bar for PV, one for native and a slot for emulated (dashed, "not yet built" until the
 * device model exists). Hand-written SVG; the PNG is the same SVG rendered by resvg with
 * DejaVu Sans (Debian: fonts-dejavu-core), falling back to any system sans font.
 */
import type { DemoRow } from './figures.js';

const COLS = 3;
const PANEL_W = 320;
const PANEL_H = 150;
const TOP = 78;
const LEFT = 20;
const LABEL_W = 78;
const BAR_MAX = 150;
const COLORS = { pv: '#2b6cb0', native: '#718096', emulated: '#c05621' } as const;

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A figure in 3-4 significant digits. */
export function fmtValue(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function bar(x: number, y: number, name: string, value: number | undefined, max: number, color: string): string {
  const label = `<text x="${x}" y="${y + 13}" class="k">${name}</text>`;
  if (value === undefined) {
    const text = name === 'emulated' ? 'not yet built' : 'not measured';
    return `${label}<rect x="${x + LABEL_W}" y="${y + 2}" width="${BAR_MAX}" height="15" fill="none" stroke="${color}" stroke-dasharray="4 3"/>` +
      `<text x="${x + LABEL_W + 8}" y="${y + 14}" class="n">${text}</text>`;
  }
  const w = max > 0 ? Math.max(1, (value / max) * BAR_MAX) : 1;
  return `${label}<rect x="${x + LABEL_W}" y="${y + 2}" width="${w.toFixed(1)}" height="15" fill="${color}"/>` +
    `<text x="${(x + LABEL_W + w + 5).toFixed(1)}" y="${y + 14}" class="v">${esc(fmtValue(value))}</text>`;
}

function panel(row: DemoRow, i: number): string {
  const x = LEFT + (i % COLS) * PANEL_W;
  const y = TOP + Math.floor(i / COLS) * PANEL_H;
  const max = Math.max(row.pv ?? 0, row.native ?? 0, row.emulated ?? 0);
  const ratio = row.ratio === undefined ? '' : `PV/native ${row.ratio.toFixed(2)}`;
  return [
    `<rect x="${x - 8}" y="${y - 4}" width="${PANEL_W - 12}" height="${PANEL_H - 14}" rx="6" fill="#f7fafc" stroke="#e2e8f0"/>`,
    `<text x="${x}" y="${y + 14}" class="t">${esc(row.label)}</text>`,
    `<text x="${x}" y="${y + 31}" class="u">${esc(row.unit)}, ${row.better} is better${ratio === '' ? '' : ` · ${ratio}`}</text>`,
    bar(x, y + 42, 'PV', row.pv, max, COLORS.pv),
    bar(x, y + 66, 'native', row.native, max, COLORS.native),
    bar(x, y + 90, 'emulated', row.emulated, max, COLORS.emulated),
  ].join('\n');
}

export function chartSvg(rows: readonly DemoRow[], title: string, subtitle: string): string {
  const width = LEFT + COLS * PANEL_W;
  const height = TOP + Math.ceil(rows.length / COLS) * PANEL_H + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Verdana, sans-serif">`,
    '<style>.h{font-size:20px;font-weight:bold;fill:#1a202c}.s{font-size:12px;fill:#4a5568}.t{font-size:13px;font-weight:bold;fill:#1a202c}' +
      '.u{font-size:11px;fill:#4a5568}.k{font-size:12px;fill:#2d3748}.v{font-size:12px;fill:#1a202c}.n{font-size:11px;fill:#a0aec0;font-style:italic}</style>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${LEFT - 8}" y="30" class="h">${esc(title)}</text>`,
    `<text x="${LEFT - 8}" y="52" class="s">${esc(subtitle)}</text>`,
    ...rows.map((r, i) => panel(r, i)),
    '</svg>',
  ].join('\n') + '\n';
}

/**
 * The SVG as PNG, twice its size for sharp text. resvg (a native binary) is loaded here, not at
 * import: every `xenpv` command loads this module, and a dom0 needs no renderer to serve disks.
 */
export async function renderPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: '#ffffff',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    logLevel: 'off',
  });
  return r.render().asPng();
}
