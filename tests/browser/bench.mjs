// Runs bench/index.html in headless Chromium against a built package and
// prints, for each scenario, the median and interquartile range of the
// per-round ratios (package / pure-JS baseline) by the page's main-thread CPU
// time and by the wall clock, then the whole result as JSON.
// Usage: node bench.mjs <pkg dir> [--rounds N] (N >= 9, default 15).

import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { servePage } from './support.mjs';

const pkg = process.argv[2];
const roundsAt = process.argv.indexOf('--rounds');
const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 15;
if (!pkg || !(Number.isSafeInteger(rounds) && rounds >= 9)) {
  console.error('usage: node bench.mjs <pkg dir> [--rounds N (at least 9)]');
  process.exit(2);
}
const site = await servePage({ dir: join(import.meta.dirname, 'bench'), pkg });

// `gc()` in the page: the bench collects the heap before each timed run.
const args = [...CHROMIUM_ARGS, '--js-flags=--expose-gc'];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
try {
  const page = await browser.newPage();
  // The CPU time of the page's main thread, in seconds (`ThreadTime`; the time the thread waits
  // for a core on a busy machine is not in it).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.exposeFunction('benchThreadTime', async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'ThreadTime')?.value ?? NaN;
  });
  await page.goto(`${site.url}/?rounds=${rounds}`);
  await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 600_000 });
  const result = await page.evaluate(() => window.benchResult);
  if (result.error) {
    console.error(result.error);
    process.exitCode = 1;
  } else {
    const line = (name, r) =>
      console.log(
        `  ${name.padEnd(24)} median ${r.median.toFixed(2)}x  IQR ${r.q1.toFixed(2)}-${r.q3.toFixed(2)} ` +
          `(${r.iqr.toFixed(2)})  baseline ${r.baselineNsPerMessage} ns/msg, seqsync ${r.seqsyncNsPerMessage} ns/msg`,
      );
    const rounds = `${result.rounds} rounds after ${result.warmupRounds} left out`;
    console.log(`seqsync / pure-JS baseline per message, ${result.clock === 'cpu' ? 'main-thread CPU time' : 'wall clock'}, ${rounds}:`);
    line('reordered + duplicates', result.reordered);
    line('in order', result.inOrder);
    console.log(`the same rounds by the wall clock:`);
    line('reordered + duplicates', result.wall.reordered);
    line('in order', result.wall.inOrder);
    console.log('in order, each position written to localStorage before onMessage returns ("baseline" is the package as it is):');
    line('saving / package', result.savingEveryPosition);
    line('saving / package, wall', result.savingEveryPositionWall);
    console.log('the same against the pure-JS baseline:');
    line('saving / baseline', result.savingEveryPositionVsBaseline);
    console.log(JSON.stringify(result, null, 2));
  }
} finally {
  await browser.close();
  await site.stop();
}
