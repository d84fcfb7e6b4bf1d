// The one atomic file write lives in src/util/atomic-write.ts (reports and run folders use it too).
export { FileWriteError, outputProblem, writeFileAtomic } from '../util/atomic-write.js';
