/**
 * The HTML report in a real browser: Debian's chromium, headless, driven by puppeteer-core (never a downloaded
 * browser). The page must load with no console error and no network request, and every chart must draw as many
 * marks as the sweep has points to show. A screenshot is kept in test/artifacts/ (and, with
 * PARASWEEP_UPDATE_DOCS=1, copied to docs/report.png for the README).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import puppeteer, { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepToFiles } from '../src/sweep.js';
import { CHROMIUM, chromiumArgs, hasChromium } from './browser/chromium.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from './helpers.js';

/** Without CI the test needs chromium to be installed; in CI (`.ci/run` installs it) a missing one fails. */
const run = hasChromium || process.env.CI === 'true';
if (!run) process.stderr.write('\n*** NOTICE: no chromium at /usr/bin/chromium; the report browser test is SKIPPED ***\n\n');

const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
// Three GPU counts up to 8192 and no offload: about 125 k rows, enough for every chart, quick to sweep and load.
const NGPUS = [512, 2048, 8192];

type Row = Record<string, number | boolean | string>;

afterAll(cleanupTempDirs);

describe.skipIf(!run)('the HTML report in headless chromium', () => {
  let dir: string;
  let rows: Row[];
  let browser: Browser;

  beforeAll(async () => {
    dir = makeTempDir();
    await sweepToFiles(
      { model: 'llama3.1-405b', hardware: 'h100-sxm-80gb', engine: 'cpu', search: { ngpus_range: NGPUS, offload_range: ['none'] } },
      [join(dir, 'results.arrow'), join(dir, 'results.parquet')],
    );
    rows = tableFromIPC(readFileSync(join(dir, 'results.arrow'))).toArray().map((row) => row.toJSON() as Row);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs() });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('is built the same from Arrow and from Parquet, self-contained and small', () => {
    for (const input of ['results.arrow', 'results.parquet']) {
      const result = spawnSync('node', ['bin/parasweep.js', 'report', join(dir, input), '-o', join(dir, `${input}.html`)], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`${rows.length} rows -> .*\\.html`));
    }
    const fromArrow = readFileSync(join(dir, 'results.arrow.html'), 'utf8');
    const fromParquet = readFileSync(join(dir, 'results.parquet.html'), 'utf8').replace('results.parquet', 'results.arrow');
    // Compared as a boolean: a failure would otherwise print two megabytes of HTML.
    expect(fromParquet === fromArrow, 'the Parquet and Arrow reports are identical').toBe(true);
    expect(fromArrow).toContain('<title>parasweep report: LLaMA-3.1 405B on h100-sxm-80gb</title>');
    // Nothing to fetch: no external script, stylesheet or image.
    expect(fromArrow).not.toMatch(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src="http/);
    expect(statSync(join(dir, 'results.arrow.html')).size).toBeLessThan(5e6);
  });

  it('loads with no console error and draws every chart with the expected marks', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('request', (request) => {
      if (!/^(file|data|blob|about):/.test(request.url())) errors.push(`network request: ${request.url()}`);
    });
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(`file://${join(dir, 'results.arrow.html')}`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.rendered !== 'pending', { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.rendered)).toBe('done');
    const marks: Record<string, number> = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('g.role-mark')].flatMap((group) => {
          const name = [...group.classList].find((c) => /_marks$/.test(c) && !/^(layer|concat)_/.test(c));
          return name ? [[name.replace(/_marks$/, ''), group.children.length]] : [];
        }),
      ),
    );

    // What the charts should show, computed here from the rows, independently of the report's aggregation.
    const fitting = rows.filter((row) => row.fits);
    const scalingPoints = new Set(fitting.map((row) => row.ngpus)).size;
    const focus = Math.max(...fitting.map((row) => row.ngpus as number));
    const atFocus = rows.filter((row) => row.ngpus === focus);
    const cells = new Map<string, boolean>();
    for (const row of atFocus) cells.set(`${row.tp}/${row.pp}`, (cells.get(`${row.tp}/${row.pp}`) ?? false) || Boolean(row.fits));
    const front = new Set(
      atFocus
        .filter(
          (row) =>
            !atFocus.some(
              (other) =>
                (other.total_gib as number) <= (row.total_gib as number) &&
                (other.step_time_s as number) <= (row.step_time_s as number) &&
                ((other.total_gib as number) < (row.total_gib as number) || (other.step_time_s as number) < (row.step_time_s as number)),
            ),
        )
        .map((row) => `${row.total_gib}/${row.step_time_s}`),
    );
    expect(scalingPoints).toBe(NGPUS.length);
    expect(marks).toMatchObject({
      scaling_tokens: scalingPoints,
      scaling_mfu: scalingPoints,
      scaling_memory: scalingPoints,
      heat_cells: cells.size,
      heat_labels: cells.size,
      heat_fits: [...cells.values()].filter(Boolean).length,
      pareto_points: front.size,
    });
    expect(cells.size).toBeGreaterThan(4);
    expect(front.size).toBeGreaterThan(3);
    // Stacked bars: one per non-zero term of each of the 10 top configs (at least compute and memory's weights).
    const specs = await page.evaluate(() => JSON.parse(document.getElementById('parasweep-specs')!.textContent!));
    expect(marks.time_bars).toBe(specs['chart-time'].data.values.length);
    expect(marks.memory_bars).toBe(specs['chart-memory'].data.values.length);
    expect(marks.time_bars).toBeGreaterThanOrEqual(10 * 3);
    expect(marks.memory_bars).toBeGreaterThanOrEqual(10 * 3);
    const tableRows = await page.evaluate(() => document.querySelectorAll('#top-configs tbody tr').length);
    expect(tableRows).toBe(10);
    // The table's best config is the fastest fitting one at the focus GPU count.
    const best = Math.max(...atFocus.filter((row) => row.fits).map((row) => row.tokens_per_s_per_gpu as number));
    const firstRate = await page.evaluate(() => document.querySelector('#top-configs tbody tr td:nth-child(5)')!.textContent);
    expect(Number(firstRate)).toBe(Math.round(best));
    expect(errors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(50_000);
    if (process.env.PARASWEEP_UPDATE_DOCS === '1') copyFileSync(shot, join(REPO_ROOT, 'docs', 'report.png'));
    await page.close();
  }, 120_000);
});
