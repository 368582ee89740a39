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

/** A process graph run synchronously (POST /result): the file it saves, as a Blob. */
export async function processResult(processGraph: Json): Promise<Blob> {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  let response: Response;
  try {
    response = await fetch(`${API_ROOT}/result`, { method: "POST", headers, body: JSON.stringify({ process: { process_graph: processGraph } }) });
  } catch (error) {
    throw new ApiError(`The server did not answer (${(error as Error).message}).`, 0, "NetworkError");
  }
  if (!response.ok) throw await errorOf(response);
  return response.blob();
}
