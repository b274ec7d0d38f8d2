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
  dataset: { name: string; digest: string; source_type?: string; source?: string; schema?: string };
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
