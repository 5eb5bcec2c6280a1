// The dashboard's only way to the network: same-origin requests to the API, with the key
// from sessionStorage and an ETag cache (a repeated GET sends If-None-Match; a 304 reuses
// the body it already has).

const KEY_STORAGE = "flowmeter.api_key";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

/** The API cannot be reached at all (network error). */
export class ApiDown extends Error {}

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  cache.clear();
}

const cache = new Map<string, { etag: string; body: unknown }>();

/** Requests sent and how many were answered 304 (shown in the footer, read by the tests). */
export const stats = { requests: 0, notModified: 0 };

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = storedKey();
  return key ? { Authorization: `Bearer ${key}`, ...extra } : extra;
}

async function failure(response: Response): Promise<ApiError> {
  let body: { error?: string; message?: string; details?: { field?: string } } = {};
  try {
    body = await response.json();
  } catch {
    // Not our envelope (a proxy's page): the status says enough.
  }
  return new ApiError(
    response.status,
    body.error ?? `http_${response.status}`,
    body.message ?? `the API answered ${response.status}`,
    body.details?.field ?? null,
  );
}

async function send(path: string, init: RequestInit): Promise<Response> {
  stats.requests += 1;
  try {
    return await fetch(path, init);
  } catch (error) {
    throw new ApiDown(`the API does not answer (${(error as Error).message})`);
  }
}

/** GET a JSON body, revalidating with the ETag of the last answer for the same path. */
export async function get<T>(path: string): Promise<T> {
  const held = cache.get(path);
  const extra: Record<string, string> = held ? { "If-None-Match": held.etag } : {};
  const response = await send(path, { headers: headers(extra), cache: "no-store" });
  if (response.status === 304 && held) {
    stats.notModified += 1;
    return held.body as T;
  }
  if (!response.ok) throw await failure(response);
  const body = (await response.json()) as T;
  const etag = response.headers.get("ETag");
  if (etag) cache.set(path, { etag, body });
  return body;
}

/** POST a JSON body. */
export async function post<T>(path: string, body: unknown): Promise<T> {
  const response = await send(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}
