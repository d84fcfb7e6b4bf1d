// A data-set file or folder that cannot be used as it is. The message is one line that
// names the file and says what was expected, so the command line can print it alone.
export class DataError extends Error {
  override readonly name = 'DataError';

  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}
