import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CompactRow, MEMORY_PARTS, ReportData, TIME_PARTS } from './aggregate.js';

/**
 * The HTML report: one self-contained file. Charts are Vega-Lite specs (charts as data) rendered by vega-embed;
 * vega, vega-lite and vega-embed are inlined from node_modules, so opening the file needs no network. The data in
 * each spec is the aggregate of src/report/aggregate.ts, never the rows.
 */

const require = createRequire(import.meta.url);

/** The UMD builds of the charting libraries, in load order (vega-embed needs vega and vega-lite as globals). */
const LIBRARIES: Array<[pkg: string, file: string]> = [
  ['vega', 'build/vega.min.js'],
  ['vega-lite', 'build/vega-lite.min.js'],
  ['vega-embed', 'build/vega-embed.min.js'],
];

/** A file of an installed package; their `exports` maps hide the UMD builds from require.resolve. */
function packageFile(pkg: string, file: string): string {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${pkg} package's ${file}`);
    dir = parent;
  }
  return join(dir, file);
}

let inlined: string | undefined;

function libraries(): string {
  inlined ??= LIBRARIES.map(([pkg, file]) => {
    const source = readFileSync(packageFile(pkg, file), 'utf8').replace(/\/\/# sourceMappingURL=\S+/g, '');
    // A literal `</script` would end the inline script element early.
    return `<script>${source.replace(/<\/script/gi, '<\\/script')}</script>`;
  }).join('\n');
  return inlined;
}

/** Provenance shown in the header, from the results' schema metadata. */
export interface ReportContext {
  title: string;
  source: string;
  metadata: ReadonlyMap<string, string>;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function meta(metadata: ReadonlyMap<string, string>, key: string): unknown {
  const text = metadata.get(`parasweep.${key}`);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Batch size and sequence length go into the labels only when the sweep varies them. */
interface LabelOptions {
  gbs?: boolean;
  seq?: boolean;
}

function labelOptions(data: ReportData): LabelOptions {
  const rows = [...data.top, ...data.front, ...data.scaling.flatMap((point) => (point.best ? [point.best] : []))];
  const varies = (name: string) => new Set(rows.map((row) => row[name])).size > 1;
  return { gbs: varies('global_batch_size'), seq: varies('seq_length') };
}

export function layoutLabel(v: CompactRow, options: LabelOptions = {}): string {
  const prefix = `${options.gbs ? `gbs${v.global_batch_size} ` : ''}${options.seq ? `seq${v.seq_length} ` : ''}`;
  return prefix + layoutCore(v);
}

function layoutCore(v: CompactRow): string {
  const schedule = v.pp === 1 ? '' : v.schedule === 'interleaved' ? ` int/v${v.vpp}` : ` ${String(v.schedule)}`;
  const moe = Number(v.ep) > 1 || Number(v.etp) > 1 ? ` ep${v.ep} etp${v.etp}` : '';
  const offload = v.offload === undefined || v.offload === 'none' ? '' : ` off:${String(v.offload)}`;
  return `tp${v.tp} pp${v.pp}${schedule} cp${v.cp}${moe} dp${v.dp} z${v.zero}${Number(v.dp_replicas) > 1 ? ` x${v.dp_replicas} replicas` : ''}${v.sp ? ' sp' : ''} mbs${v.mbs} rc:${v.recompute}${offload}`;
}

/** Memory limit of a config that fits: the hardware's memory over (1 + headroom). */
function fitLimitGib(metadata: ReadonlyMap<string, string>): number | undefined {
  const hardware = meta(metadata, 'hardware') as Array<{ memory_gib: number }> | undefined;
  const headroom = Number(metadata.get('parasweep.headroom') ?? NaN);
  if (!hardware?.[0] || !Number.isFinite(headroom)) return undefined;
  return hardware[0].memory_gib / (1 + headroom);
}

const round = (value: number, digits = 4) => Number(value.toPrecision(digits));

/** The Vega-Lite specs, by chart id. Marks are named so that tests (and readers) can find them. */
export function reportSpecs(data: ReportData, metadata: ReadonlyMap<string, string>): Record<string, object> {
  const limit = fitLimitGib(metadata);
  const labels = labelOptions(data);
  const width = 760;
  const scaling = data.scaling
    .filter((point) => point.best)
    .map((point) => ({
      ngpus: point.ngpus,
      tokens_per_s_per_gpu: round(point.best!.tokens_per_s_per_gpu as number),
      mfu: round(point.best!.mfu as number),
      total_gib: round(point.best!.total_gib as number),
      fitting: point.fitting,
      layout: layoutLabel(point.best!, labels),
    }));
  const x = { field: 'ngpus', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'GPUs' };
  const tooltip = [
    { field: 'ngpus', title: 'GPUs' },
    { field: 'layout' },
    { field: 'tokens_per_s_per_gpu', title: 'tokens/s/GPU', format: ',.0f' },
    { field: 'mfu', title: 'MFU', format: '.1%' },
    { field: 'total_gib', title: 'GiB/GPU', format: '.1f' },
    { field: 'fitting', title: 'configs that fit' },
  ];
  const panel = (name: string, field: string, title: string, format: string, extra: object[] = []) => ({
    width,
    height: 150,
    layer: [
      { mark: { type: 'line', interpolate: 'monotone' }, encoding: { x, y: { field, type: 'quantitative', title, axis: { format } } } },
      {
        name,
        mark: { type: 'point', filled: true, size: 18 },
        encoding: { x, y: { field, type: 'quantitative', title, axis: { format } }, tooltip },
      },
      ...extra,
    ],
  });
  const limitRule = limit === undefined ? [] : [{ data: { values: [{ limit_gib: round(limit) }] }, mark: { type: 'rule', color: '#c0392b', strokeDash: [4, 3] }, encoding: { y: { field: 'limit_gib', type: 'quantitative' } } }];

  const specs: Record<string, object> = {
    'chart-scaling': {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      data: { values: scaling },
      vconcat: [
        panel('scaling_tokens', 'tokens_per_s_per_gpu', 'best tokens/s per GPU', ',.0f'),
        panel('scaling_mfu', 'mfu', 'its MFU', '.0%'),
        panel('scaling_memory', 'total_gib', 'its GiB per GPU', '.0f', limitRule),
      ],
    },
  };

  const cells = data.cells.map((cell) => ({ ...cell, min_gib: round(cell.min_gib), label: cell.min_gib.toFixed(0) }));
  specs['chart-heatmap'] = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: cells },
    width: 420,
    height: 260,
    encoding: {
      x: { field: 'tp', type: 'ordinal', title: 'tensor parallel (TP)' },
      y: { field: 'pp', type: 'ordinal', title: 'pipeline parallel (PP)', sort: 'descending' },
    },
    layer: [
      {
        name: 'heat_cells',
        mark: 'rect',
        encoding: {
          color: { field: 'min_gib', type: 'quantitative', title: 'least GiB/GPU', scale: { scheme: 'viridis', reverse: true } },
          tooltip: [
            { field: 'tp' },
            { field: 'pp' },
            { field: 'min_gib', title: 'least GiB/GPU' },
            { field: 'fits', title: 'a config fits' },
            { field: 'configs', title: 'configs' },
          ],
        },
      },
      {
        // The fits boundary: cells where at least one config fits are outlined.
        name: 'heat_fits',
        transform: [{ filter: 'datum.fits' }],
        mark: { type: 'rect', fill: null, stroke: '#111', strokeWidth: 2.5 },
      },
      { name: 'heat_labels', mark: { type: 'text', fontSize: 11 }, encoding: { text: { field: 'label' }, color: { value: '#fff' } } },
    ],
  };

  const front = data.front.map((row) => ({
    total_gib: round(row.total_gib as number),
    step_time_s: round(row.step_time_s as number),
    fits: row.fits === true,
    layout: layoutLabel(row, labels),
  }));
  specs['chart-pareto'] = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: 280,
    layer: [
      {
        data: { values: front },
        mark: { type: 'line', interpolate: 'step-after', color: '#999' },
        encoding: { x: { field: 'total_gib', type: 'quantitative', title: 'GiB per GPU' }, y: { field: 'step_time_s', type: 'quantitative', title: 'step time (s)', scale: { type: 'log' } } },
      },
      {
        name: 'pareto_points',
        data: { values: front },
        mark: { type: 'point', filled: true, size: 50 },
        encoding: {
          x: { field: 'total_gib', type: 'quantitative' },
          y: { field: 'step_time_s', type: 'quantitative', scale: { type: 'log' } },
          color: { field: 'fits', type: 'nominal', title: 'fits', scale: { domain: [true, false], range: ['#2e7d32', '#c0392b'] } },
          tooltip: [{ field: 'layout' }, { field: 'total_gib', title: 'GiB/GPU' }, { field: 'step_time_s', title: 'step s' }],
        },
      },
      ...(limit === undefined
        ? []
        : [{ data: { values: [{ limit_gib: round(limit) }] }, mark: { type: 'rule', color: '#c0392b', strokeDash: [4, 3] }, encoding: { x: { field: 'limit_gib', type: 'quantitative' } } }]),
    ],
  };

  const top: CompactRow[] = data.top.map((row, i) => ({ ...row, rank: `#${i + 1} ${layoutLabel(row, labels)}` }));
  const long = (parts: readonly string[], unit: string) =>
    top.flatMap((row) =>
      parts
        .filter((part) => Number(row[part] ?? 0) > 0)
        .map((part) => ({ rank: row.rank, part: part.replace(/_(s|gib)$/, '').replace(/_comm$/, ' comm'), [unit]: round(Number(row[part])) })),
    );
  const ranks = top.map((row) => row.rank);
  const stacked = (name: string, values: object[], field: string, title: string) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    width: 520,
    height: { step: 22 },
    name,
    mark: 'bar',
    encoding: {
      y: { field: 'rank', type: 'nominal', sort: ranks, title: null, axis: { labelLimit: 360 } },
      x: { field, type: 'quantitative', title, stack: 'zero' },
      color: { field: 'part', type: 'nominal', title: null },
      tooltip: [{ field: 'rank' }, { field: 'part' }, { field, format: '.3f' }],
    },
  });
  specs['chart-time'] = stacked('time_bars', long(TIME_PARTS, 'seconds'), 'seconds', 'step time (s)');
  specs['chart-memory'] = stacked('memory_bars', long(MEMORY_PARTS, 'gib'), 'gib', 'GiB per GPU');
  return specs;
}

function topTable(data: ReportData): string {
  const labels = labelOptions(data);
  const head = ['#', 'layout', 'GiB/GPU', 'step s', 'tokens/s/GPU', 'MFU'];
  const rows = data.top.map((row, i) =>
    [
      String(i + 1),
      layoutLabel(row, labels),
      (row.total_gib as number).toFixed(1),
      (row.step_time_s as number).toFixed(2),
      (row.tokens_per_s_per_gpu as number).toFixed(0),
      `${((row.mfu as number) * 100).toFixed(1)}%`,
    ].map((cell, c) => `<td${c === 1 ? '' : ' class="num"'}>${escapeHtml(cell)}</td>`).join(''),
  );
  return `<table id="top-configs"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r}</tr>`).join('')}</tbody></table>`;
}

function provenanceList(metadata: ReadonlyMap<string, string>, data: ReportData, source: string): string {
  const dtypes = meta(metadata, 'dtypes') as Record<string, string | null> | undefined;
  const command = meta(metadata, 'command_line');
  const items: Array<[string, string]> = [
    ['results', `${source}: ${data.rows.toLocaleString('en-US')} rows`],
    ['parasweep', `${metadata.get('parasweep.version') ?? '?'}, formula ${metadata.get('parasweep.formula') ?? '?'}`],
    ['engine', `${metadata.get('parasweep.adapter') ?? '?'} (${metadata.get('parasweep.float_type') ?? '?'})`],
    ['precision', dtypes ? Object.entries(dtypes).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ') : '?'],
    ['headroom', metadata.get('parasweep.headroom') ?? '?'],
    ['command', Array.isArray(command) ? command.join(' ') : String(command ?? '?')],
  ];
  return `<dl>${items.map(([k, v]) => `<dt>${k}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}
dt{color:#666}dd{margin:0;font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}p.note{color:#555}`;

/** The whole report, one self-contained HTML document. */
export function renderReport(data: ReportData, context: ReportContext): string {
  const { metadata } = context;
  const specs = reportSpecs(data, metadata);
  const limit = fitLimitGib(metadata);
  const focus = data.focusNgpus === undefined ? 'none' : `${data.focusNgpus} GPUs`;
  // JSON inside <script>: `<` escaped so that no string in the data can close the element.
  const json = JSON.stringify(specs).replace(/</g, '\\u003c');
  const section = (id: string, title: string, note: string) =>
    `<section><h2>${escapeHtml(title)}</h2><p class="note">${escapeHtml(note)}</p><div id="${id}"></div></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(context.title)}</title><style>${STYLE}</style>
${libraries()}
</head><body data-rendered="pending">
<h1>${escapeHtml(context.title)}</h1>
${provenanceList(metadata, data, context.source)}
${section('chart-scaling', 'Best throughput per GPU count', 'For each GPU count, the fitting config with the most tokens/s per GPU; its MFU and its memory per GPU' + (limit ? ` (dashed: the ${limit.toFixed(1)} GiB a config may use with the headroom).` : '.'))}
${section('chart-heatmap', `Memory over TP x PP at ${focus}`, 'Least memory per GPU of any config in each (TP, PP) cell; outlined cells hold at least one config that fits.')}
${section('chart-pareto', `Pareto front: memory against step time at ${focus}`, 'Configs no other config beats on both memory and step time; red ones do not fit' + (limit ? ` (dashed: ${limit.toFixed(1)} GiB).` : '.'))}
${section('chart-time', `Where the step goes: top ${data.top.length} configs at ${focus}`, 'Step time by term (communication terms are the exposed part).')}
${section('chart-memory', `Where the memory goes: top ${data.top.length} configs at ${focus}`, 'Memory of the heaviest GPU by component.')}
<section><h2>Top configs at ${escapeHtml(focus)}</h2>${topTable(data)}</section>
<p class="note">Layout: gbs: global batch size (when swept), tp/pp/cp/ep/etp/dp degrees, pipeline schedule (int/vN: interleaved with N virtual stages), zN: ZeRO stage, sp: sequence parallel, mbs: micro-batch size, rc: recompute, off: optimizer offload.</p>
<script type="application/json" id="parasweep-specs">${json}</script>
<script>
const specs = JSON.parse(document.getElementById('parasweep-specs').textContent);
Promise.all(Object.entries(specs).map(([id, spec]) => vegaEmbed('#' + id, spec, { renderer: 'svg', actions: false })))
  .then(() => { document.body.dataset.rendered = 'done'; })
  .catch((error) => { console.error(error); document.body.dataset.rendered = 'error'; });
</script>
</body></html>
`;
}

