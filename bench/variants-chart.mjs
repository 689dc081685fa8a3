// Draws the accuracy / size / latency trade-off of a recipe's variants as an SVG (no chart library: plain SVG text).
// usage: node bench/variants-chart.mjs OUTDIR/report.json OUT.svg
// report.json is what `tinyops optimize MODEL OUTDIR --recipe FILE` writes. Two panels share the accuracy axis:
// accuracy against file size (KiB, log scale) and accuracy against batch-1 latency (µs); the base model is a square.
import fs from 'node:fs';

const [reportPath, outPath] = process.argv.slice(2);
if (!reportPath || !outPath) { console.error('usage: node variants-chart.mjs report.json out.svg'); process.exit(1); }
const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
const points = [];
if (report.base?.accuracy != null) points.push({ name: 'base (fp32)', base: true, ...report.base });
for (const v of report.variants) if (v.evaluation?.accuracy != null) points.push({ name: v.name, ok: v.within_budget, ...v.evaluation });
if (points.length === 0) { console.error(`${reportPath}: no evaluated variants (the recipe needs evaluation: fashion-mnist)`); process.exit(1); }

const W = 980, H = 470, panelW = 400, panelH = 320, top = 60, left = [80, 560];
const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const acc = points.map(p => 100 * p.accuracy);
let aMin = Math.floor(Math.min(...acc) - 0.3), aMax = Math.ceil(Math.max(...acc) + 0.3);
const y = a => top + panelH - (a - aMin) / (aMax - aMin) * panelH;
const niceTicks = (lo, hi, n) => { const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n))); const s = [1, 2, 5, 10].map(k => k * step).find(k => (hi - lo) / k <= n); const t = []; for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-9; v += s) t.push(+v.toFixed(6)); return t; };
const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];
const out = [];
out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(report.recipe)}: variants of ${esc(report.base_model.split('/').pop())} (Fashion-MNIST test accuracy)</text>`);

function panel(px, key, label, logScale, fmt) {
  const vals = points.map(p => p[key]).filter(v => v != null);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (logScale) { lo = Math.log10(lo * 0.8); hi = Math.log10(hi * 1.25); } else { const pad = (hi - lo) * 0.1 || hi * 0.1; lo = Math.max(0, lo - pad); hi += pad; }
  const x = v => px + ((logScale ? Math.log10(v) : v) - lo) / (hi - lo) * panelW;
  out.push(`<rect x="${px}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#999"/>`);
  for (const a of niceTicks(aMin, aMax, 6)) {
    out.push(`<line x1="${px}" x2="${px + panelW}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${px - 6}" y="${y(a) + 4}" text-anchor="end">${a.toFixed(1)} %</text>`);
  }
  const ticks = logScale ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].map(k => k * 1024).filter(v => Math.log10(v) >= lo && Math.log10(v) <= hi) : niceTicks(lo, hi, 6);
  for (const t of ticks) out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${top + panelH}" stroke="#eee"/><text x="${x(t)}" y="${top + panelH + 16}" text-anchor="middle">${fmt(t)}</text>`);
  out.push(`<text x="${px + panelW / 2}" y="${top + panelH + 36}" text-anchor="middle">${label}</text>`);
  points.forEach((p, i) => {
    if (p[key] == null) return;
    const cx = x(p[key]), cy = y(100 * p.accuracy), c = p.base ? '#000' : colours[i % colours.length];
    out.push(p.base ? `<rect x="${cx - 5}" y="${cy - 5}" width="10" height="10" fill="${c}"/>` : `<circle cx="${cx}" cy="${cy}" r="5" fill="${c}" stroke="${p.ok === false ? 'red' : 'none'}" stroke-width="2"/>`);
  });
}
panel(left[0], 'file_bytes', 'ONNX file size (KiB, log scale)', true, v => (v / 1024).toFixed(0));
panel(left[1], 'latency_p50_us', 'batch-1 latency p50 (µs, this machine, TinyOps)', false, v => v.toFixed(0));
out.push(`<text x="40" y="${top + panelH / 2}" text-anchor="middle" transform="rotate(-90 20 ${top + panelH / 2})">accuracy</text>`);
// legend
let lx = 80, ly = top + panelH + 60;
points.forEach((p, i) => {
  const c = p.base ? '#000' : colours[i % colours.length];
  const label = `${p.name}: ${(100 * p.accuracy).toFixed(2)} %, ${(p.file_bytes / 1024).toFixed(1)} KiB${p.latency_p50_us != null ? ', ' + p.latency_p50_us.toFixed(1) + ' µs' : ''}`;
  out.push(p.base ? `<rect x="${lx - 5}" y="${ly - 9}" width="10" height="10" fill="${c}"/>` : `<circle cx="${lx}" cy="${ly - 4}" r="5" fill="${c}"/>`);
  out.push(`<text x="${lx + 10}" y="${ly}">${esc(label)}</text>`);
  if (lx > 400) { lx = 80; ly += 16; } else lx += 460;
});
const finalH = ly + 20;
out[0] = out[0].replace(`height="${H}" viewBox="0 0 ${W} ${H}"`, `height="${finalH}" viewBox="0 0 ${W} ${finalH}"`);
out[1] = `<rect width="${W}" height="${finalH}" fill="white"/>`;
out.push('</svg>');
fs.writeFileSync(outPath, out.join('\n') + '\n');
console.error(`${outPath}: ${points.length} points`);
