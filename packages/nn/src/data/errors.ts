// The one error type of the data pipeline: it names the file, the row (when the problem is in a manifest
// row) and the offending value, so that bad data never fails obscurely.

export interface DataErrorInfo {
  /** The file at fault (the IDX/CSV/PNG file; for a row of a manifest, the image file when there is one). */
  file: string;
  /** 1-based data row of a CSV manifest (the header is not counted), when the problem is in a row. */
  row?: number;
  /** The manifest file, when `file` is an image named by one of its rows. */
  manifest?: string;
  /** The manifest column and value that named `file`, for an image of a manifest row. */
  column?: string;
  value?: string;
  /** What is wrong, in words, including the offending value. */
  reason: string;
}

/** An error about bad or missing data; `message` is `file[, row N]: reason` (plus the manifest). */
export class DataError extends Error {
  readonly file: string;
  readonly row: number | undefined;
  readonly manifest: string | undefined;
  readonly column: string | undefined;
  readonly value: string | undefined;
  readonly reason: string;

  constructor(info: DataErrorInfo, opts?: { cause?: unknown }) {
    super(formatDataError(info), opts);
    this.name = 'DataError';
    this.file = info.file;
    this.row = info.row;
    this.manifest = info.manifest;
    this.column = info.column;
    this.value = info.value;
    this.reason = info.reason;
  }
}

export function formatDataError(info: DataErrorInfo): string {
  if (info.manifest !== undefined && info.row !== undefined) {
    const cell = info.column !== undefined ? `, ${info.column} '${info.value ?? ''}'` : '';
    const img = info.file !== info.manifest ? ` (image ${info.file})` : '';
    return `${info.manifest}: row ${info.row}${cell}${img}: ${info.reason}`;
  }
  return `${info.file}${info.row !== undefined ? `: row ${info.row}` : ''}: ${info.reason}`;
}

/** The message of an unknown thrown value. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
