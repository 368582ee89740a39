// Layers as openEO process graphs: load_collection (one date or a period, an area or the whole
// collection), optionally SCL's clouds masked, then three bands drawn as red, green, blue, or a band
// maths formula (or SCL's cloud test) reduced over the bands to one value drawn through a colormap,
// optionally reduced over time (mean, median, max). The server draws them as XYZ map services.
// Each layer is first a LayerPlan, the steps in order; the graph (here) and the Python code
// (python.ts) are both written from it, so what the page shows as code is what it sent.
import type { Collection } from "./api";
import { bandsOf, parseFormula, toCallback, type ProcessGraph } from "./formula";
import type { BBox } from "./map";

export type LayerKind = "truecolor" | "falsecolor" | "ndvi" | "formula" | "clouds";
export type TimeReducer = "mean" | "median" | "max";
export type FormulaTree = ReturnType<typeof parseFormula>;

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
  reducer?: TimeReducer | null; // over the dates; none: one date (the picked scene, else the latest of the period)
  maskClouds?: boolean; // SCL's cloud classes masked (no data) before the band maths and the reduction
}

/** What a layer computes, in order: load, [mask clouds], [RGB bands | formula | cloud test], [reduce over t]. */
export interface LayerPlan {
  collection: string;
  area: BBox | null;
  temporalExtent: [string, string]; // openEO's: the end excluded
  bands: string[]; // loaded (SCL too when masking)
  masked: string[] | null; // the bands kept after masking with SCL's clouds; null: no mask
  rgb: string[] | null; // three bands drawn as red, green, blue
  formula: FormulaTree | null; // band maths, reduced over the bands
  clouds: boolean; // the cloud test itself (1 cloud, 0 clear), reduced over the bands
  reducer: TimeReducer | null;
}

/** B − A: both layers computed on the server, each one image (its reducer, else the latest valid value). */
export interface DifferencePlan {
  a: LayerPlan;
  b: LayerPlan;
}

export interface LayerGraph {
  title: string;
  graph: ProcessGraph;
  rendering: Rendering;
  formula: string | null; // the formula drawn, with the collection's band names
  plan?: LayerPlan | DifferencePlan; // what the graph was written from (python.ts writes the code from it)
}

// Sentinel-2's scene classification (SCL): cloud shadow 3, cloud medium probability 8, high 9, thin cirrus 10.
export const SCL_BAND = "SCL";
export const SCL_CLOUD_CLASSES = [3, 8, 9, 10];
export const REDUCER_NAMES: Record<TimeReducer, string> = { mean: "mean", median: "median", max: "maximum" };

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
  // NIR is brighter than red over vegetation: CDSE's false colour stretches reflectance 0..0.4.
  falsecolor: { colormap: null, range: [0, 4000], gamma: 1 },
  ndvi: { colormap: "RdYlGn", range: [-1, 1], gamma: 1 },
  formula: { colormap: "viridis", range: [-1, 1], gamma: 1 },
  // Clear black, cloud white; over several dates the grey is the share of cloudy dates.
  clouds: { colormap: "Greys_r", range: [0, 1], gamma: 1 },
};
export const DIFFERENCE_RENDERING: Rendering = { colormap: "RdBu", range: [-1, 1], gamma: 1 };

export function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

function rgbBands(request: LayerRequest, wanted: [string, string][], what: string): string[] {
  const bands = wanted.map(([common, sentinel2]) => bandFor(request.collection, common, sentinel2));
  if (bands.some((b) => b === null)) throw new Error(`${request.collection.id} has no ${what}.`);
  return bands as string[];
}

/** The steps of a layer; an Error (a FormulaError for a wrong formula) before any request when it cannot be made. */
export function planLayer(request: LayerRequest): { plan: LayerPlan; title: string; formula: string | null } {
  const id = request.collection.id;
  let rgb: string[] | null = null;
  let tree: FormulaTree | null = null;
  let formula: string | null = null;
  let name: string;
  if (request.kind === "truecolor") {
    rgb = rgbBands(request, [["red", "B04"], ["green", "B03"], ["blue", "B02"]], "red, green and blue bands to draw in true colour");
    name = "True colour";
  } else if (request.kind === "falsecolor") {
    rgb = rgbBands(request, [["nir", "B08"], ["red", "B04"], ["green", "B03"]], "near-infrared, red and green bands for a false colour picture");
    name = "False colour";
  } else if (request.kind === "clouds") {
    name = "Cloud mask (SCL)";
  } else {
    formula = request.formula;
    if (request.kind === "ndvi") {
      const nir = bandFor(request.collection, "nir", "B08");
      const red = bandFor(request.collection, "red", "B04");
      if (!nir || !red) throw new Error(`${id} has no near-infrared and red bands for an NDVI.`);
      formula = `(${nir} - ${red}) / (${nir} + ${red})`;
    }
    tree = parseFormula(formula, bandNames(request.collection));
    name = request.kind === "ndvi" ? "NDVI" : formula;
  }
  const clouds = request.kind === "clouds";
  const mask = !clouds && request.maskClouds === true;
  if ((clouds || mask) && !bandNames(request.collection).includes(SCL_BAND)) {
    throw new Error(`${id} has no ${SCL_BAND} band (Sentinel-2's scene classification) to find clouds with.`);
  }
  const needed = clouds ? [SCL_BAND] : rgb ?? bandsOf(tree!);
  const reducer = request.reducer ?? null;
  const [first, last] = request.dates;
  const period = first === last ? first : `${first} to ${last}`;
  const when = reducer ? `${REDUCER_NAMES[reducer]} of ${period}` : period;
  return {
    plan: {
      collection: id,
      area: request.area,
      temporalExtent: [first, nextDay(last)], // the end is exclusive in openEO
      bands: mask && !needed.includes(SCL_BAND) ? [...needed, SCL_BAND] : needed,
      masked: mask ? needed : null,
      rgb,
      formula: tree,
      clouds,
      reducer,
    },
    title: `${name}, ${when}${mask ? ", clouds masked" : ""}`,
    formula,
  };
}

type Nodes = ProcessGraph;

const data = { from_parameter: "data" };

/** The reducer over the bands that answers true where SCL is one of the cloud classes: eq and or, as clients write it. */
export function cloudCallback(): { process_graph: Nodes } {
  const nodes: Nodes = { scl: { process_id: "array_element", arguments: { data, label: SCL_BAND } } };
  let previous = "";
  for (const value of SCL_CLOUD_CLASSES) {
    nodes[`is${value}`] = { process_id: "eq", arguments: { x: { from_node: "scl" }, y: value } };
    if (previous) {
      nodes[`or${value}`] = { process_id: "or", arguments: { x: { from_node: previous }, y: { from_node: `is${value}` } } };
      previous = `or${value}`;
    } else previous = `is${value}`;
  }
  nodes[previous].result = true;
  return { process_graph: nodes };
}

function reducerCallback(process: string): { process_graph: Nodes } {
  return { process_graph: { [process]: { process_id: process, arguments: { data }, result: true } } };
}

/** The plan's nodes, their ids prefixed (two layers in one graph), and the id of its last node. */
export function planNodes(plan: LayerPlan, prefix = "", reduceTime: TimeReducer | "last" | null = plan.reducer): { nodes: Nodes; last: string } {
  const id = (name: string) => `${prefix}${name}`;
  const [w, s, e, n] = plan.area ?? [];
  const nodes: Nodes = {
    [id("load")]: {
      process_id: "load_collection",
      arguments: {
        id: plan.collection,
        spatial_extent: plan.area ? { west: w, south: s, east: e, north: n } : null,
        temporal_extent: plan.temporalExtent,
        bands: plan.bands,
      },
    },
  };
  let last = id("load");
  if (plan.masked) {
    nodes[id("clouds")] = { process_id: "reduce_dimension", arguments: { data: { from_node: last }, dimension: "bands", reducer: cloudCallback() } };
    nodes[id("bands")] = { process_id: "filter_bands", arguments: { data: { from_node: last }, bands: plan.masked } };
    nodes[id("masked")] = { process_id: "mask", arguments: { data: { from_node: id("bands") }, mask: { from_node: id("clouds") } } };
    last = id("masked");
  }
  const bandReducer = plan.clouds ? cloudCallback() : plan.formula ? { process_graph: toCallback(plan.formula) } : null;
  if (bandReducer) {
    const name = id(plan.clouds ? "cloudmask" : "bandmath");
    nodes[name] = { process_id: "reduce_dimension", arguments: { data: { from_node: last }, dimension: "bands", reducer: bandReducer } };
    last = name;
  }
  if (reduceTime) {
    nodes[id("time")] = { process_id: "reduce_dimension", arguments: { data: { from_node: last }, dimension: "t", reducer: reducerCallback(reduceTime) } };
    last = id("time");
  }
  return { nodes, last };
}

/** The process graph of a layer; an Error (a FormulaError for a wrong formula) before any request when it cannot be made. */
export function layerGraph(request: LayerRequest): LayerGraph {
  const { plan, title, formula } = planLayer(request);
  const { nodes, last } = planNodes(plan);
  nodes[last].result = true;
  return { title, graph: nodes, rendering: DEFAULT_RENDERING[request.kind], formula, plan };
}

/** Whether a layer is one value per pixel (what a difference subtracts). */
export function isOneBand(plan: LayerPlan): boolean {
  return plan.rgb === null;
}

/**
 * B − A in one graph: both layers loaded and computed, each made one image (its own reducer over its
 * dates, else `last`: the latest valid value, which for one date is that date), then merge_cubes with
 * `subtract` as the overlap resolver, as the Python client writes `b - a`.
 */
export function differenceGraph(a: LayerGraph, b: LayerGraph): LayerGraph {
  const planA = a.plan, planB = b.plan;
  if (!planA || !planB || "a" in planA || "a" in planB) throw new Error("A and B must both be layers made here (not a difference).");
  if (!isOneBand(planA) || !isOneBand(planB)) throw new Error("The difference needs two one-band layers (NDVI, band maths or the cloud mask), not true or false colour.");
  if (planA.collection !== planB.collection) throw new Error(`A is of ${planA.collection} and B of ${planB.collection}: a difference needs one collection.`);
  // One area for both, so both cubes lie on one grid and every pixel overlaps.
  const area = sharedArea(planA.area, planB.area);
  const left = planNodes({ ...planA, area }, "a_", planA.reducer ?? "last");
  const right = planNodes({ ...planB, area }, "b_", planB.reducer ?? "last");
  const graph: ProcessGraph = {
    ...left.nodes,
    ...right.nodes,
    difference: {
      process_id: "merge_cubes",
      arguments: {
        cube1: { from_node: right.last },
        cube2: { from_node: left.last },
        overlap_resolver: { process_graph: { subtract: { process_id: "subtract", arguments: { x: { from_parameter: "x" }, y: { from_parameter: "y" } }, result: true } } },
      },
      result: true,
    },
  };
  return {
    title: `Difference: (${b.title}) − (${a.title})`,
    graph,
    rendering: DIFFERENCE_RENDERING,
    formula: null,
    plan: { a: { ...planA, area }, b: { ...planB, area } },
  };
}

function sharedArea(a: BBox | null, b: BBox | null): BBox | null {
  if (!a || !b) return a ?? b;
  const box: BBox = [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])];
  if (box[0] >= box[2] || box[1] >= box[3]) throw new Error("A and B cover different areas that do not overlap: search one area for both.");
  return box;
}

/**
 * The range a gain makes of the range typed: values are multiplied by ``gain`` before the stretch,
 * so the same colours reach values ``gain`` times smaller (gain 2 on 0..3000 draws 0..1500 as the
 * full scale). The server's rendering options know range and gamma; a gain is a range.
 */
export function withGain(range: [number, number], gain: number): [number, number] {
  return [range[0] / gain, range[1] / gain];
}

/** The tile URL for a rendering: the service's template with the options as query parameters (no new service). */
export function tileUrl(template: string, rendering: Rendering): string {
  const query = new URLSearchParams();
  if (rendering.colormap) query.set("colormap", rendering.colormap);
  query.set("range", `${rendering.range[0]},${rendering.range[1]}`);
  if (rendering.gamma !== 1) query.set("gamma", String(rendering.gamma));
  return `${template}${template.includes("?") ? "&" : "?"}${query}`;
}
