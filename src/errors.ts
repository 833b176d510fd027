/**
 * Bad input from the user: a config file, an override, a flag, a range. The CLI turns it into one line on
 * stderr and exit code 2, before any output file exists. `field` names what was wrong so the user can find it.
 */
export class InputError extends Error {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'InputError';
    this.field = field;
  }
}

/** A result failed the engines' cross-check, or a GPU failed in a way we could not recover from. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Writing an output failed (a full disk, a closed pipe): exit code 1, and the partial file is removed. */
export class OutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}
