// Layers as openEO process graphs: load_collection (one date or a period, an area or the whole
// collection), then either three bands drawn as red, green, blue, or a band maths formula reduced
// over the bands to one value drawn through a colormap. The server draws them as XYZ map services.
import type { Collection } from "./api";
import { bandsOf, parseFormula, toCallback, type ProcessGraph } from "./formula";
import type { BBox } from "./map";

export type LayerKind = "truecolor" | "ndvi" | "formula";

export interface Rendering {
  colormap: string | null; // null: three bands, drawn as RGB
  range: [number, number];
  gamma: number;
}

export interface LayerRequest {
  kind: LayerKind;
  formula: string; // for "formula"
  collection: Collection;
  dates: [string, string]; // first and last day (inclusive), YYYY-MM-DD
  area: BBox | null; // null: the whole collection
}

export interface LayerGraph {
  title: string;
  graph: ProcessGraph;
  rendering: Rendering;
  formula: string | null; // the formula drawn, with the collection's band names
}

/** The collection's band names (cube:dimensions, else eo:bands). */
export function bandNames(collection: Collection): string[] {
  const dimension = Object.values(collection["cube:dimensions"] ?? {}).find((d) => d.type === "bands");
  return dimension?.values ?? collection.summaries?.["eo:bands"]?.map((b) => b.name) ?? [];
}

/** A band by its common name (eo:bands), else by Sentinel-2's name, else null. */
function bandFor(collection: Collection, common: string, sentinel2: string): string | null {
  const names = bandNames(collection);
  const byCommon = collection.summaries?.["eo:bands"]?.find((b) => b.common_name === common)?.name;
  if (byCommon && names.includes(byCommon)) return byCommon;
  return names.includes(sentinel2) ? sentinel2 : null;
}

export const DEFAULT_RENDERING: Record<LayerKind, Rendering> = {
  truecolor: { colormap: null, range: [0, 3000], gamma: 1 },
  ndvi: { colormap: "RdYlGn", range: [-1, 1], gamma: 1 },
  formula: { colormap: "viridis", range: [-1, 1], gamma: 1 },
};

export function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

function load(request: LayerRequest, bands: string[]) {
  const [w, s, e, n] = request.area ?? [];
  return {
    process_id: "load_collection",
    arguments: {
      id: request.collection.id,
      spatial_extent: request.area ? { west: w, south: s, east: e, north: n } : null,
      temporal_extent: [request.dates[0], nextDay(request.dates[1])], // the end is exclusive in openEO
      bands,
    },
  };
}

/** The process graph of a layer; a FormulaError (thrown before any request) when its formula is wrong. */
export function layerGraph(request: LayerRequest): LayerGraph {
  const when = request.dates[0] === request.dates[1] ? request.dates[0] : `${request.dates[0]} to ${request.dates[1]}`;
  if (request.kind === "truecolor") {
    const rgb = [bandFor(request.collection, "red", "B04"), bandFor(request.collection, "green", "B03"), bandFor(request.collection, "blue", "B02")];
    if (rgb.some((b) => b === null)) throw new Error(`${request.collection.id} has no red, green and blue bands to draw in true colour.`);
    return {
      title: `True colour, ${when}`,
      graph: { load: { ...load(request, rgb as string[]), result: true } },
      rendering: DEFAULT_RENDERING.truecolor,
      formula: null,
    };
  }
  let formula = request.formula;
  if (request.kind === "ndvi") {
    const nir = bandFor(request.collection, "nir", "B08");
    const red = bandFor(request.collection, "red", "B04");
    if (!nir || !red) throw new Error(`${request.collection.id} has no near-infrared and red bands for an NDVI.`);
    formula = `(${nir} - ${red}) / (${nir} + ${red})`;
  }
  const tree = parseFormula(formula, bandNames(request.collection));
  return {
    title: `${request.kind === "ndvi" ? "NDVI" : formula}, ${when}`,
    graph: {
      load: load(request, bandsOf(tree)),
      bandmath: {
        process_id: "reduce_dimension",
        arguments: { data: { from_node: "load" }, dimension: "bands", reducer: { process_graph: toCallback(tree) } },
        result: true,
      },
    },
    rendering: DEFAULT_RENDERING[request.kind],
    formula,
  };
}

/** The tile URL for a rendering: the service's template with the options as query parameters (no new service). */
export function tileUrl(template: string, rendering: Rendering): string {
  const query = new URLSearchParams();
  if (rendering.colormap) query.set("colormap", rendering.colormap);
  query.set("range", `${rendering.range[0]},${rendering.range[1]}`);
  if (rendering.gamma !== 1) query.set("gamma", String(rendering.gamma));
  return `${template}${template.includes("?") ? "&" : "?"}${query}`;
}
