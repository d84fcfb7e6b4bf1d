// Errors about a weights file a user handed us: one line naming the file and what is
// wrong with it. The CLI prints the message alone.

/** A weights or model file that cannot be read, written or converted as asked. */
export class WeightsFileError extends Error {
  override readonly name = 'WeightsFileError';

  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}
