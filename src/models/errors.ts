// A model that cannot be built as asked: an unknown name or an option out of range.
// The message names the problem and what to pass instead.
export class ModelConfigError extends Error {
  override readonly name = 'ModelConfigError';
}
