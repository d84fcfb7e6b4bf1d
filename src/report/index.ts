// Reports and plots: SVG line charts, heat maps and bar charts written from Node without
// a browser, PNG renderings of them, and the HTML pages of runs and experiments.
export { lineChart, seriesPath, legendItems, axisTicks } from './line-chart.js';
export type { LineChart, LineChartSpec, Panel, Series, SeriesStyle, Point, AxisSpec, StyleKeyEntry } from './line-chart.js';
export { confusionMatrixChart } from './confusion-matrix.js';
export type { ConfusionMatrixSpec, ConfusionMatrixChart } from './confusion-matrix.js';
export { fractionBarChart } from './bar-chart.js';
export type { BarChartSpec, BarChart } from './bar-chart.js';
export { niceTicks, tickStep, formatTick, formatPercentTick } from './ticks.js';
export type { Ticks } from './ticks.js';
export { movingAverage, thin, tailMean } from './series.js';
export { svgToPng, writeSvgAsPng, imageDataUri } from './png.js';
export type { RawImage } from './png.js';
export { renderRunReport } from './run-report.js';
export { renderCompareReport } from './compare-report.js';
export {
  renderDegradationReport, summarizeDegradation, degradationErrorChart, degradationLossChart, degradationMarkdown,
} from './degradation-report.js';
export type { DegradationRun, DegradationNet, DegradationSummary, NetSummary, FamilyVerdict, NetFamily } from './degradation-report.js';
export { perClassAccuracy, confusionAccuracy } from './run-data.js';
export type { RunData, StepRecord, EpochRecord, Evaluation, MisclassifiedSample } from './run-data.js';
