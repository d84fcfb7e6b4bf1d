// report.html of a run folder: its records, plus an evaluation of its best weights on
// the test set for the confusion matrix and the misclassified images.
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { renderRunReport } from '../report/run-report.js';
import type { RunData } from '../report/run-data.js';
import { readRunData } from './run-data.js';
import { evaluateRunOnTest, runConfig, type TestEvaluationOptions } from './test-evaluation.js';

export const REPORT_FILE = 'report.html';

export interface RunReportOptions extends TestEvaluationOptions {
  /** Evaluate the weights for the confusion matrix and misclassified images (default true). */
  evaluate?: boolean;
}

/** The run's data with its test evaluation; a failed evaluation becomes a note, not an error. */
export async function loadRunForReport(dir: string, opts: RunReportOptions = {}): Promise<RunData> {
  const run = readRunData(dir);
  if (opts.evaluate === false) return { ...run, evaluationNote: 'The weights were not evaluated for this report.' };
  try {
    const evaluation = await evaluateRunOnTest(dir, runConfig(run.config, join(dir, 'config.json')), opts);
    return evaluation === null ? { ...run, evaluationNote: 'The data set has no test split to evaluate on.' } : { ...run, evaluation };
  } catch (e) {
    return { ...run, evaluationNote: `The weights could not be evaluated: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Write `report.html` (atomically) into the run folder and return its path. */
export async function writeRunReport(dir: string, opts: RunReportOptions = {}): Promise<string> {
  const html = renderRunReport(await loadRunForReport(dir, opts));
  const path = join(dir, REPORT_FILE);
  writeFileAtomic(path, html);
  return path;
}
