// The REST API: MLflow's endpoints under /api/2.0/mlflow and Cairn's under /api/2.0/cairn.

export const MLFLOW = "/api/2.0/mlflow";
export const CAIRN = "/api/2.0/cairn";

/** An error answered by the server (its `message`), or a network failure. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Query = Record<string, string | number | boolean | undefined | null | string[]>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      signal,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(`Cannot reach the server: ${String(error)}`, 0, "UNAVAILABLE");
  }
  const text = await response.text();
  let payload: unknown = undefined;
  try {
    payload = text ? JSON.parse(text) : {};
  } catch {
    payload = undefined;
  }
  if (!response.ok) {
    const error = payload as { message?: unknown; error_code?: unknown } | undefined;
    const message =
      typeof error?.message === "string" ? error.message : `${response.status} ${response.statusText}`;
    const code = typeof error?.error_code === "string" ? error.error_code : "HTTP_ERROR";
    throw new ApiError(message, response.status, code);
  }
  if (payload === undefined) throw new ApiError(`Not JSON from ${url}`, response.status, "BAD_RESPONSE");
  return payload as T;
}

export function get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  return request<T>("GET", withQuery(path, query), undefined, signal);
}

export function post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>("POST", path, body, signal);
}

/** Any method with a JSON body (MLflow's registry deletes carry one). */
export function send<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>(method, path, body, signal);
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
