// Shapes of the JSON the server answers (MLflow's REST API and Cairn's additions).

export interface KeyValue {
  key: string;
  value: string;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: KeyValue[];
}

export interface RunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: string;
  start_time?: number;
  end_time?: number | null;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface MetricPoint {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}

export interface DatasetInput {
  tags?: KeyValue[];
  dataset: { name: string; digest: string; source_type?: string; source?: string; schema?: string; profile?: string };
}

export interface Run {
  info: RunInfo;
  data: { metrics?: MetricPoint[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: DatasetInput[] };
}

/** One row of Cairn's compact runs table. */
export interface TableRun {
  run_id: string;
  run_name: string;
  status: string;
  user_id: string;
  start_time: number;
  end_time: number | null;
  experiment_id: string;
  lifecycle_stage: string;
}

export type ColumnValues = Record<string, (string | number | null)[]>;

export interface RunTablePage {
  offset: number;
  runs: TableRun[];
  params: ColumnValues;
  metrics: ColumnValues;
  tags: ColumnValues;
  next_page_token?: string;
}

export interface ColumnKeys {
  params: string[];
  metrics: string[];
  tags: string[];
  complete: boolean;
}

export interface MetricSeries {
  metric_key: string;
  total: number;
  downsampled: boolean;
  steps: number[];
  timestamps: number[];
  values: (number | null)[];
  mins?: (number | null)[];
  maxs?: (number | null)[];
}

export interface MetricSummary {
  key: string;
  latest: number | string;
  step: number;
  min: number | string | null;
  max: number | string | null;
  count: number;
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export interface ArtifactPreview {
  path: string;
  size?: number;
  kind: "text" | "json" | "yaml" | "csv" | "image" | "mlmodel" | "binary" | "too_large";
  truncated: boolean;
  text?: string;
  data?: unknown;
  rows?: string[][];
  rows_truncated?: boolean;
  parse_error?: string;
}

export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  current_stage?: string;
  aliases?: string[];
  tags?: KeyValue[];
}

export interface RegisteredModel {
  name: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions?: ModelVersion[];
  aliases?: { alias: string; version: string }[];
  tags?: KeyValue[];
}

// -- Delta tables runs recorded (Cairn's data endpoints) and lineage ----------------------

/** One table runs recorded: each version with how many runs read and wrote it. */
export interface DataTable {
  uri: string;
  name: string;
  versions: { version: number; readers: number; writers: number }[];
  last_used: number | null;
}

export interface TableCommit {
  version: number;
  timestamp_ms: number;
  operation: string;
  user: string | null;
  run_id: string | null;
  parameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

/** A run that read (`input`) or wrote (`output`) one version of a table. */
export interface TableUse {
  version: number;
  role: string;
  run_id: string;
  run_name: string | null;
  experiment_id: string;
  status: string;
  start_time: number | null;
  lifecycle_stage: string;
}

export interface TableHistory {
  uri: string;
  name: string;
  commits: TableCommit[];
  /** Every recorded version with how many runs read and wrote it (`uses` lists the latest). */
  versions: { version: number; readers: number; writers: number }[];
  uses: TableUse[];
  error: string | null;
}

export interface TableVersionInfo {
  uri: string;
  name: string;
  version: number;
  num_rows: number | null;
  num_files: number;
  size_bytes: number;
  schema: Record<string, string>;
  schema_hash: string;
  content_digest: string;
  timestamp_ms: number | null;
}

export interface ColumnStats {
  type: string;
  count: number;
  nulls: number;
  min: unknown;
  max: unknown;
  mean: number | null;
  std: number | null;
  distinct: number | null;
}

export interface TableDiff {
  uri: string;
  from_version: number;
  to_version: number;
  from_rows: number;
  to_rows: number;
  schema_changes: { column: string; change: string; old_type: string | null; new_type: string | null }[];
  columns: Record<string, { from: ColumnStats | null; to: ColumnStats | null }>;
  shifted: string[];
  commits: TableCommit[];
}

export interface LineageTable {
  uri: string;
  version: number;
  role: string;
  name: string;
  digest: string;
  num_rows: number | null;
  schema_hash: string | null;
  content_digest: string | null;
  context: string | null;
  content_matches: boolean | null;
  error: string | null;
  commits: TableCommit[];
}

/** `cairn lineage --json`: model version → run → code, params, environment → tables. */
export interface Lineage {
  target: string;
  model: {
    name: string;
    version: string | number;
    aliases: string[];
    source: string | null;
    run_id: string | null;
    creation_timestamp: number | null;
  } | null;
  run: {
    run_id: string;
    run_name: string | null;
    experiment_id: string;
    status: string;
    user: string | null;
    start_time: number | null;
    end_time: number | null;
    reproduces: string | null;
  } | null;
  code: Record<string, string | null>;
  environment: Record<string, string | null>;
  params: Record<string, string>;
  tables: LineageTable[];
}
