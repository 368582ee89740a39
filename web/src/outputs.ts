// The chart's and the download's process graphs, both made from the layer's own graph (graphs.ts):
// the chart reduces it over the area to a mean and a standard deviation per date
// (aggregate_spatial), the download saves it as a GeoTIFF. Also the download's size estimate.
import type { Collection } from "./api";
import type { ProcessGraph } from "./formula";
import { bandNames, layerGraph, type LayerGraph, type LayerRequest } from "./graphs";
import type { BBox } from "./map";
import type { SearchState } from "./search";

export type AreaGeometry = GeoJSON.Polygon | GeoJSON.MultiPolygon;

/** The statistics the chart asks for, in the order of the answer's ``statistic`` labels. */
export const STATISTICS = ["mean", "sd"] as const;

/** The search's area: its box (for load_collection) and its geometry (for aggregate_spatial, masks). */
export function areaOf(state: SearchState | null): { bbox: BBox; geometry: AreaGeometry } {
  if (!state?.area || !state.geometry) throw new Error("Search first: the area searched is the area used.");
  return { bbox: state.area, geometry: state.geometry };
}

/** Whether a geometry is just its bounding box (then there is nothing outside the box to mask). */
export function isBox(geometry: AreaGeometry, [w, s, e, n]: BBox): boolean {
  if (geometry.type !== "Polygon" || geometry.coordinates.length !== 1) return false;
  const ring = geometry.coordinates[0];
  return ring.length === 5 && ring.every(([x, y]) => (x === w || x === e) && (y === s || y === n));
}

function resultNodeOf(graph: ProcessGraph): string {
  const id = Object.keys(graph).find((key) => graph[key].result);
  if (!id) throw new Error("The layer's process graph has no result node.");
  return id;
}

/** A copy of the layer's graph whose result node is no longer the result (more nodes follow it). */
function openGraph(layer: LayerGraph): { graph: ProcessGraph; last: string } {
  const graph: ProcessGraph = JSON.parse(JSON.stringify(layer.graph));
  const last = resultNodeOf(graph);
  delete graph[last].result;
  return { graph, last };
}

const callback = (processId: string, args: Record<string, unknown>) => ({
  process_graph: { [processId]: { process_id: processId, arguments: args, result: true } },
});

/** Scene classification classes left out of the chart: cloud shadow, cloud medium and high probability, thin cirrus. */
export const SCL_CLOUDS = [3, 8, 9, 10];

/** Whether the collection has a scene classification band to leave clouds out with. */
export const hasSceneClassification = (collection: Collection) => bandNames(collection).includes("SCL");

/** Over the bands: true where SCL is one of SCL_CLOUDS (an or-chain of eq, which the server fuses into one test). */
function cloudReducer(): { process_graph: ProcessGraph } {
  const nodes: ProcessGraph = { scl: { process_id: "array_element", arguments: { data: { from_parameter: "data" }, label: "SCL" } } };
  let last = "";
  for (const value of SCL_CLOUDS) {
    nodes[`is${value}`] = { process_id: "eq", arguments: { x: { from_node: "scl" }, y: value } };
    if (last) {
      const id = `or${value}`;
      nodes[id] = { process_id: "or", arguments: { x: { from_node: last }, y: { from_node: `is${value}` } } };
      last = id;
    } else last = `is${value}`;
  }
  nodes[last].result = true;
  return { process_graph: nodes };
}

export interface ChartOptions {
  maxCloud: number | null; // the search's cloud cover limit (scenes), null: none
  maskClouds: boolean; // leave out cloudy pixels (SCL_CLOUDS) of the scenes kept
}

/**
 * The chart's graph: the layer over the search's whole period (the picked scene does not matter),
 * only the scenes the search found (the same cloud cover limit as a load_collection property),
 * optionally without their cloudy pixels, reduced over the area's pixels to their mean and standard
 * deviation per date, in one JSON answer: a vector cube with the dimensions ``statistic`` (mean,
 * sd), ``geometry`` and ``t``. A date whose pixels are all left out has no value (null): a gap.
 */
export function chartGraph(request: LayerRequest, state: SearchState, options: ChartOptions): { graph: ProcessGraph; layer: LayerGraph } {
  if (request.kind === "truecolor") throw new Error("A chart needs a layer of one band: show NDVI or band maths on the map.");
  const area = areaOf(state);
  const [from, to] = state.period;
  if (!from || !to) throw new Error("Choose the search's dates first.");
  const layer = layerGraph({ ...request, dates: [from, to], area: area.bbox });
  const { graph, last } = openGraph(layer);
  const loadId = Object.keys(graph).find((id) => graph[id].process_id === "load_collection")!;
  const load = graph[loadId];
  if (options.maxCloud !== null && options.maxCloud < 100) {
    load.arguments.properties = { "eo:cloud_cover": callback("lte", { x: { from_parameter: "value" }, y: options.maxCloud }) };
  }
  let data = last;
  if (options.maskClouds && hasSceneClassification(request.collection)) {
    const bands = load.arguments.bands as string[];
    if (!bands.includes("SCL")) load.arguments.bands = [...bands, "SCL"]; // the formula picks its bands by name
    graph.clouds = { process_id: "reduce_dimension", arguments: { data: { from_node: loadId }, dimension: "bands", reducer: cloudReducer() } };
    graph.clear = { process_id: "mask", arguments: { data: { from_node: last }, mask: { from_node: "clouds" } } };
    data = "clear";
  }
  for (const statistic of STATISTICS) {
    graph[`area_${statistic}`] = {
      process_id: "aggregate_spatial",
      arguments: { data: { from_node: data }, geometries: area.geometry, reducer: callback(statistic, { data: { from_parameter: "data" } }) },
    };
    // A dimension that names the statistic, so that both fit into one cube (merge_cubes).
    graph[`label_${statistic}`] = {
      process_id: "add_dimension",
      arguments: { data: { from_node: `area_${statistic}` }, name: "statistic", label: statistic, type: "other" },
    };
  }
  graph.statistics = {
    process_id: "merge_cubes",
    arguments: { cube1: { from_node: `label_${STATISTICS[0]}` }, cube2: { from_node: `label_${STATISTICS[1]}` } },
  };
  graph.save = { process_id: "save_result", arguments: { data: { from_node: "statistics" }, format: "JSON" }, result: true };
  return { graph, layer };
}

/**
 * The download's graph: the layer as it is (its date or period), over the search's area, saved as a
 * GeoTIFF; an area that is not a box (drawn, uploaded) masks the pixels outside it (mask_polygon).
 */
export function downloadGraph(request: LayerRequest, state: SearchState): { graph: ProcessGraph; layer: LayerGraph } {
  const area = areaOf(state);
  const layer = layerGraph({ ...request, area: area.bbox });
  const { graph, last } = openGraph(layer);
  let data = last;
  if (!isBox(area.geometry, area.bbox)) {
    graph.area_mask = { process_id: "mask_polygon", arguments: { data: { from_node: last }, mask: area.geometry } };
    data = "area_mask";
  }
  graph.save = { process_id: "save_result", arguments: { data: { from_node: data }, format: "GTiff" }, result: true };
  return { graph, layer };
}

/** The finest resolution (metres) of the bands a layer reads: eo:bands' gsd, else the x step of a metric grid, else 10. */
export function resolutionOf(collection: Collection, bands: string[]): number {
  const gsd = (collection.summaries?.["eo:bands"] as { name: string; gsd?: number }[] | undefined)
    ?.filter((band) => bands.includes(band.name) && typeof band.gsd === "number")
    .map((band) => band.gsd as number);
  if (gsd && gsd.length > 0) return Math.min(...gsd);
  const x = (collection["cube:dimensions"] as Record<string, { type: string; step?: number | null; reference_system?: unknown }> | undefined)?.x;
  if (x?.step && x.reference_system !== 4326) return x.step;
  return 10;
}

/** Pixels of a WGS84 box at a resolution in metres (a sphere's metres: an estimate, not the grid). */
export function pixelsOf([w, s, e, n]: BBox, resolution: number): number {
  const metresPerDegree = 111_320;
  const width = (e - w) * metresPerDegree * Math.cos((((s + n) / 2) * Math.PI) / 180);
  const height = (n - s) * metresPerDegree;
  return Math.ceil(width / resolution) * Math.ceil(height / resolution);
}

/** The bands a layer's graph reads (its load_collection's), the collection's own if it names none. */
export function bandsRead(graph: ProcessGraph, collection: Collection): string[] {
  const load = Object.values(graph).find((node) => node.process_id === "load_collection");
  const bands = load?.arguments.bands;
  return Array.isArray(bands) ? (bands as string[]) : bandNames(collection);
}
