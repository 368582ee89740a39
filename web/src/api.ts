// terracube's openEO API, as the page calls it: same origin, the user's token (if any), errors in words.
import type { Geometry } from "geojson";

/** The API's root: the page lives at <root>/browser/, so the API is one level up. */
export const API_ROOT = new URL("../", window.location.href).href.replace(/\/$/, "");

/** An openEO error ({code, message}) or a failed request, with the words to show a person. */
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly code: string) {
    super(message);
  }
}

export type Json = Record<string, unknown>;

export interface Me {
  user_id: string;
  name?: string;
  budget?: number | null;
  storage?: { free?: number; quota?: number } | null;
  usage?: { budget_unit?: string; cpu?: { value: number }; storage?: { value: number } };
}

export interface Collection {
  id: string;
  title?: string;
  extent: { spatial: { bbox: number[][] }; temporal: { interval: (string | null)[][] } };
  "cube:dimensions"?: Record<string, { type: string; values?: string[] }>;
  summaries?: { "eo:bands"?: { name: string; common_name?: string }[] };
}

export interface Item {
  id: string;
  geometry: Geometry | null;
  bbox?: number[];
  properties: { datetime: string | null; "eo:cloud_cover"?: number; [key: string]: unknown };
  assets?: Record<string, { href: string; type?: string; roles?: string[] }>;
}

export interface ItemPage {
  features: Item[];
  links?: { rel: string; href: string }[];
}

let bearer: string | null = null;

/** The token every call sends from now on, as the openEO API wants it: ``oidc/<provider>/<token>``. */
export function useToken(provider: string | null, token: string | null): void {
  bearer = provider && token ? `oidc/${provider}/${token}` : null;
}

async function errorOf(response: Response): Promise<ApiError> {
  let code = `HTTP ${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") {
      message = body.message;
      code = body.code ?? code;
    }
  } catch {
    // not JSON: the status line says it
  }
  return new ApiError(message, response.status, code);
}

/** A JSON request to the API (a path like "/collections", or an absolute URL the API gave, e.g. a next link). */
export async function call<T = Json>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  let response: Response;
  try {
    response = await fetch(path.startsWith("http") ? path : API_ROOT + path, { ...init, headers });
  } catch (error) {
    throw new ApiError(`The server did not answer (${(error as Error).message}). Is terracube still running?`, 0, "NetworkError");
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return {} as T;
  return (await response.json()) as T;
}

export const me = () => call<Me>("/me");
export const collections = () => call<{ collections: Collection[] }>("/collections").then((c) => c.collections);
export const collection = (id: string) => call<Collection>(`/collections/${encodeURIComponent(id)}`);

export interface Search {
  collection: string;
  bbox: [number, number, number, number];
  from: string; // YYYY-MM-DD
  to: string; // YYYY-MM-DD, inclusive
  maxCloud: number | null;
  limit?: number;
}

/** The collection's items (STAC API item search), every page up to ``max`` items, newest order as the server gives. */
export async function searchItems(search: Search, max = 500): Promise<Item[]> {
  const query = new URLSearchParams({
    bbox: search.bbox.map((v) => v.toFixed(6)).join(","),
    datetime: `${search.from}T00:00:00Z/${search.to}T23:59:59Z`,
    limit: String(search.limit ?? 100),
  });
  if (search.maxCloud !== null && search.maxCloud < 100) query.set("filter", `eo:cloud_cover<=${search.maxCloud}`);
  let next: string | null = `/collections/${encodeURIComponent(search.collection)}/items?${query}`;
  const items: Item[] = [];
  while (next && items.length < max) {
    const page: ItemPage = await call<ItemPage>(next);
    items.push(...page.features);
    next = page.links?.find((link) => link.rel === "next")?.href ?? null;
  }
  return items;
}

export interface Service {
  id: string;
  url: string;
  attributes?: { layers?: { bbox?: number[]; minzoom?: number; maxzoom?: number }[] };
}

/** A map service (XYZ) for a process graph; its description, tile URL included. */
export async function createService(title: string, processGraph: Json, configuration: Json): Promise<Service> {
  const headers = new Headers({ "Content-Type": "application/json", Accept: "application/json" });
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  let response: Response;
  try {
    response = await fetch(`${API_ROOT}/services`, {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "XYZ", title, configuration, process: { process_graph: processGraph } }),
    });
  } catch (error) {
    throw new ApiError(`The server did not answer (${(error as Error).message}).`, 0, "NetworkError");
  }
  if (!response.ok) throw await errorOf(response);
  const id = response.headers.get("OpenEO-Identifier") ?? response.headers.get("Location")?.split("/").pop();
  if (!id) throw new ApiError("The server made the layer but did not say its id.", response.status, "NoIdentifier");
  return call<Service>(`/services/${encodeURIComponent(id)}`);
}

export const deleteService = (id: string) => call(`/services/${encodeURIComponent(id)}`, { method: "DELETE" });

// Synchronous results and batch jobs (the chart, the download and the jobs list).

/** A request whose answer is not (only) JSON: the Response, or an ApiError. */
async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  let response: Response;
  try {
    response = await fetch(API_ROOT + path, { ...init, headers });
  } catch (error) {
    throw new ApiError(`The server did not answer (${(error as Error).message}). Is terracube still running?`, 0, "NetworkError");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

const processBody = (processGraph: Json, more: Json = {}) => JSON.stringify({ ...more, process: { process_graph: processGraph } });

/** ``POST /result`` of a graph whose result is JSON (a graph ending in save_result(format="JSON")). */
export const resultJson = <T = unknown>(processGraph: Json) => call<T>("/result", { method: "POST", body: processBody(processGraph) });

/** ``POST /result`` of a graph that writes a file: its bytes and the name the server gives it. */
export async function resultFile(processGraph: Json): Promise<{ blob: Blob; filename: string | null }> {
  const response = await send("/result", { method: "POST", body: processBody(processGraph) });
  const disposition = response.headers.get("Content-Disposition") ?? "";
  return { blob: await response.blob(), filename: /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? null };
}

export type JobStatus = "created" | "queued" | "running" | "canceled" | "finished" | "error";

export interface Job {
  id: string;
  title?: string | null;
  status: JobStatus;
  progress?: number | null; // 0..100
  created: string;
  updated?: string;
}

export interface LogEntry {
  id: string;
  level: "error" | "warning" | "info" | "debug";
  message: string;
  time?: string;
  code?: string;
}

export interface ResultAsset {
  href: string; // signed: fetched without a token
  title?: string;
  type?: string;
  "file:size"?: number;
}

/** A batch job for a graph (the server validates it now); its id. */
export async function createJob(title: string, processGraph: Json): Promise<string> {
  const response = await send("/jobs", { method: "POST", body: processBody(processGraph, { title }) });
  const id = response.headers.get("OpenEO-Identifier") ?? response.headers.get("Location")?.split("/").pop();
  if (!id) throw new ApiError("The server made the job but did not say its id.", response.status, "NoIdentifier");
  return id;
}

const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`;
/** Queue the job (202, no body). */
export const startJob = (id: string) => send(`${jobPath(id)}/results`, { method: "POST" }).then(() => undefined);
export const job = (id: string) => call<Job>(jobPath(id));
export const jobs = () => call<{ jobs: Job[] }>("/jobs?limit=50").then((answer) => answer.jobs);
export const jobLogs = (id: string) => call<{ logs: LogEntry[] }>(`${jobPath(id)}/logs?limit=1000`).then((answer) => answer.logs);
export const jobResults = (id: string) =>
  call<{ assets?: Record<string, ResultAsset> }>(`${jobPath(id)}/results`).then((answer) => Object.entries(answer.assets ?? {}));
