// The time-lapse panel: the layer's kind (true colour, NDVI, a formula) over the days of the scenes the
// search found, as one XYZ service whose tiles are asked per date (the tile URL's `time`); a slider
// picks the date, Play steps through them. Two raster layers take turns: the next date loads into the
// hidden one and is shown only once its tiles are there, so the map never flashes, and one date loads
// at a time, so a slow one delays the next instead of piling up requests. Export asks the server for
// the same graph as a GIF or MP4 (save_result) and offers the file as a download.
import type { RasterTileSource } from "maplibre-gl";
import { createService, deleteService, resultFile, type Item, type Service } from "./api";
import { FormulaError } from "./formula";
import { DEFAULT_RENDERING, layerGraph, tileUrl, withGain, type LayerGraph, type LayerKind, type LayerRequest, type Rendering } from "./graphs";
import type { LayerPanel } from "./layers";
import type { BBox, MapView } from "./map";
import type { SearchPanel } from "./search";
import { byId, clearError, formatBytes, showError, working } from "./ui";

export interface TimelapseStatus {
  service: Service | null;
  dates: string[]; // the days of the search's scenes, oldest first
  shown: number; // the date on the map (an index into dates), -1 before the first
  wanted: number; // the date asked for (the slider, or Play's next); shown once its tiles are loaded
  playing: boolean;
  loading: boolean;
  tiles: string | null; // the tile URL of the date shown
}

const LAYERS = ["timelapse-a", "timelapse-b"] as const;
const MAIN_LAYER = "layer"; // the layer panel's (map.ts); hidden while the time-lapse is on the map
const FRAME_WAIT = 60_000; // a date whose tiles take longer is shown as far as it got
const DEFAULT_WIDTH = 720; // pixels of an exported frame, unless the area is smaller at full resolution

/** A WGS84 box's width in metres, along its middle latitude. */
function areaWidthMetres([w, s, e, n]: BBox): number {
  return (e - w) * 111_320 * Math.cos((((s + n) / 2) * Math.PI) / 180);
}

const day = (item: Item) => (item.properties.datetime ?? "").slice(0, 10);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** "21 July 2021": a date as people say it (the label is the day in UTC, as the scenes' days are). */
export function dateInWords(date: string): string {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

/** The layer panel's rendering controls (colours, range, gain, gamma) for a kind; its default where a value is not usable. */
function styleRendering(kind: LayerKind): Rendering {
  const fallback = DEFAULT_RENDERING[kind];
  const low = Number(byId<HTMLInputElement>("range-min").value);
  const high = Number(byId<HTMLInputElement>("range-max").value);
  const gamma = Number(byId<HTMLInputElement>("gamma").value);
  const gain = Number(byId<HTMLInputElement>("gain").value);
  return {
    colormap: fallback.colormap === null ? null : byId<HTMLSelectElement>("colormap").value || fallback.colormap,
    range: withGain(Number.isFinite(low) && Number.isFinite(high) && low < high ? [low, high] : fallback.range,
      Number.isFinite(gain) && gain > 0 ? gain : 1),
    gamma: Number.isFinite(gamma) && gamma > 0 ? gamma : fallback.gamma,
  };
}

/**
 * The cloud cover filter that finds the search's scenes again: at most the cloudiest one found. It
 * finds exactly the same scenes as the search's own limit did (none above it was found, none below
 * it was left out), and the time-lapse's dates are then the search's. None when a scene has no cloud cover.
 */
function cloudFilter(items: Item[]): number | null {
  const clouds = items.map((item) => item.properties["eo:cloud_cover"]);
  if (clouds.length === 0 || !clouds.every((c) => typeof c === "number" && Number.isFinite(c))) return null;
  return Math.max(...(clouds as number[]));
}

/**
 * The search's area cut to the scenes found: outside them there is nothing to draw, and a smaller
 * area reads fewer pixels (a synchronous export has a limit). The area itself where no scene says its bounds.
 */
export function scenesArea(area: BBox, items: Item[]): BBox {
  const boxes = items.map((item) => item.bbox);
  if (boxes.length === 0 || !boxes.every((b) => Array.isArray(b) && (b.length === 4 || b.length === 6))) return area;
  const flat = boxes.map((b) => (b!.length === 6 ? [b![0], b![1], b![3], b![4]] : b!));
  const w = Math.max(area[0], Math.min(...flat.map((b) => b[0])));
  const s = Math.max(area[1], Math.min(...flat.map((b) => b[1])));
  const e = Math.min(area[2], Math.max(...flat.map((b) => b[2])));
  const n = Math.min(area[3], Math.max(...flat.map((b) => b[3])));
  return w < e && s < n ? [w, s, e, n] : area;
}

export class TimelapsePanel {
  readonly status: TimelapseStatus = { service: null, dates: [], shown: -1, wanted: -1, playing: false, loading: false, tiles: null };
  private front = 0; // which of LAYERS is visible
  private rendering: Rendering = DEFAULT_RENDERING.ndvi;
  private kind: LayerKind = "ndvi"; // the time-lapse's, which the layer panel's choice may have left since
  private pumping: Promise<void> | null = null;
  private widthChosen = false;

  constructor(private readonly map: MapView, private readonly search: SearchPanel, private readonly layers: LayerPanel) {
    byId<HTMLFormElement>("timelapse-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.make();
    });
    byId("timelapse-slider").addEventListener("input", () => {
      this.pause(); // the person takes over from Play
      void this.goTo(Number(byId<HTMLInputElement>("timelapse-slider").value));
    });
    byId("timelapse-play").addEventListener("click", () => (this.status.playing ? this.pause() : void this.play()));
    byId("timelapse-close").addEventListener("click", () => this.close());
    byId("timelapse-width").addEventListener("input", () => (this.widthChosen = true));
    byId("timelapse-gif").addEventListener("click", () => void this.export("GIF"));
    byId("timelapse-mp4").addEventListener("click", () => void this.export("MP4"));
    // A new layer from the layer panel takes the map: the time-lapse steps aside.
    byId<HTMLFormElement>("layer-form").addEventListener("submit", () => this.close());
    // The layer panel's colours, range and gamma restyle the time-lapse too: new tile URLs, the same service.
    byId<HTMLFormElement>("style-form").addEventListener("change", () => this.restyle());
  }

  /** What the time-lapse shows: the layer chosen in the layer panel (kind, formula, rendering) over the search's dates and area. */
  private plan(): { request: LayerRequest; layer: LayerGraph; rendering: Rendering; dates: string[] } | null {
    const state = this.search.state;
    if (!state.collection || !state.area || state.items.length === 0) {
      showError("Search first: the time-lapse steps through the days of the scenes found.", "Time-lapse");
      return null;
    }
    const dates = [...new Set(state.items.map(day).filter((d) => d))].sort();
    const kind = this.layers.kind();
    const formula = byId<HTMLInputElement>("formula").value;
    const area = scenesArea(state.area, state.items);
    // One date a frame: the layer panel's reduction over the dates (mean, median...) does not apply; its cloud mask does.
    const request: LayerRequest = {
      kind, formula, collection: state.collection, dates: [dates[0], dates[dates.length - 1]], area,
      reducer: null, maskClouds: byId<HTMLInputElement>("mask-clouds").checked,
    };
    let layer: LayerGraph;
    try {
      layer = layerGraph(request);
    } catch (error) {
      showError(error, error instanceof FormulaError ? "Formula" : "Time-lapse");
      return null;
    }
    const maxCloud = cloudFilter(state.items);
    if (maxCloud !== null) {
      // The search's cloud limit, so that the dates are the scenes found, not every day of the period.
      (layer.graph.load.arguments as Record<string, unknown>).properties = {
        "eo:cloud_cover": { process_graph: { cloud: { process_id: "lte", arguments: { x: { from_parameter: "value" }, y: maxCloud }, result: true } } },
      };
    }
    const rendering = styleRendering(kind);
    return { request, layer, rendering, dates };
  }

  /** Make the time-lapse's service and show its first date. */
  async make(): Promise<void> {
    const made = this.plan();
    if (!made) return;
    clearError();
    this.pause();
    const button = byId<HTMLButtonElement>("timelapse-make");
    button.disabled = true;
    const done = working("Making the time-lapse…");
    try {
      const { layer, rendering } = made;
      const configuration = { range: rendering.range, gamma: rendering.gamma, ...(rendering.colormap ? { colormap: rendering.colormap } : {}) };
      const service = await createService(`Time-lapse: ${layer.title}`, layer.graph, configuration);
      const previous = this.status.service;
      Object.assign(this.status, { service, dates: made.dates, shown: -1, wanted: -1, tiles: null });
      this.rendering = rendering;
      this.kind = made.request.kind;
      const info = service.attributes?.layers?.[0];
      this.addLayers(info?.minzoom, info?.maxzoom, info?.bbox);
      if (previous) deleteService(previous.id).catch(() => undefined);
      const slider = byId<HTMLInputElement>("timelapse-slider");
      slider.max = String(this.status.dates.length - 1);
      slider.value = "0";
      byId("timelapse-controls").hidden = false;
      const count = this.status.dates.length;
      byId("timelapse-title-note").textContent = `${layer.title}: the ${count} date${count === 1 ? "" : "s"} of the scenes found` +
        (info?.minzoom !== undefined ? `; drawn from zoom level ${info.minzoom} on.` : ".");
      if (!this.widthChosen) this.exportSize(made.request.area!);
      await this.goTo(0);
    } catch (error) {
      showError(error, "Time-lapse");
    } finally {
      button.disabled = false;
      done();
    }
  }

  private addLayers(minzoom = 0, maxzoom = 18, bounds?: number[]): void {
    this.removeLayers();
    const m = this.map.map;
    for (const id of LAYERS) {
      m.addSource(id, {
        type: "raster", tiles: [this.urlFor(this.status.dates[0])], tileSize: 256, minzoom, maxzoom,
        ...(bounds && bounds.length === 4 ? { bounds: bounds as BBox } : {}),
      });
      // Above the layer panel's layer, below the outlines; hidden by opacity (not visibility), so its tiles still load.
      m.addLayer({
        id, type: "raster", source: id,
        paint: { "raster-opacity": 0, "raster-opacity-transition": { duration: 0, delay: 0 }, "raster-fade-duration": 0, "raster-resampling": "nearest" },
      }, "extent");
    }
    if (m.getLayer(MAIN_LAYER)) m.setLayoutProperty(MAIN_LAYER, "visibility", "none");
    this.front = 0;
  }

  private removeLayers(): void {
    const m = this.map.map;
    for (const id of LAYERS) {
      if (m.getLayer(id)) m.removeLayer(id);
      if (m.getSource(id)) m.removeSource(id);
    }
    if (m.getLayer(MAIN_LAYER)) m.setLayoutProperty(MAIN_LAYER, "visibility", "visible");
  }

  private urlFor(date: string): string {
    const template = tileUrl(this.status.service!.url, this.rendering);
    return `${template}&time=${encodeURIComponent(date)}`;
  }

  /** Ask for a date: the slider and the label follow at once, the map once its tiles are loaded. */
  private goTo(index: number): Promise<void> {
    if (!this.status.service || index < 0 || index >= this.status.dates.length) return Promise.resolve();
    this.status.wanted = index;
    byId<HTMLInputElement>("timelapse-slider").value = String(index);
    this.pumping ??= this.pump().finally(() => (this.pumping = null));
    return this.pumping;
  }

  /** Load the wanted date into the hidden layer and swap; one date at a time, skipping dates asked for meanwhile. */
  private async pump(): Promise<void> {
    while (this.status.service && this.status.wanted !== this.status.shown && this.status.wanted >= 0) {
      const index = this.status.wanted;
      const hidden = LAYERS[1 - this.front];
      const tiles = this.urlFor(this.status.dates[index]);
      this.status.loading = true;
      const slow = setTimeout(() => (byId("timelapse-loading").textContent = `Loading ${dateInWords(this.status.dates[index])}…`), 400);
      try {
        (this.map.map.getSource(hidden) as RasterTileSource | undefined)?.setTiles([tiles]);
        await this.loaded(hidden);
      } finally {
        clearTimeout(slow);
        byId("timelapse-loading").textContent = "";
        this.status.loading = false;
      }
      if (!this.map.map.getLayer(hidden)) return; // closed meanwhile
      this.map.map.setPaintProperty(hidden, "raster-opacity", 1);
      this.map.map.setPaintProperty(LAYERS[this.front], "raster-opacity", 0);
      this.front = 1 - this.front;
      Object.assign(this.status, { shown: index, tiles });
      this.label(index);
    }
  }

  private async loaded(source: string): Promise<void> {
    const deadline = performance.now() + FRAME_WAIT;
    await sleep(0); // setTiles reloads asynchronously
    while (performance.now() < deadline) {
      const m = this.map.map;
      if (!m.getSource(source) || m.isSourceLoaded(source)) return;
      await sleep(50);
    }
  }

  private label(index: number): void {
    const date = this.status.dates[index];
    const output = byId<HTMLOutputElement>("timelapse-date");
    output.textContent = `${dateInWords(date)} (${index + 1} of ${this.status.dates.length})`;
    output.dataset.date = date;
  }

  private speed(): number {
    return Number(byId<HTMLSelectElement>("timelapse-speed").value) || 2; // dates per second
  }

  /** Step through the dates, from the one shown, round and round, until Pause. */
  async play(): Promise<void> {
    if (!this.status.service || this.status.playing) return;
    this.status.playing = true;
    const button = byId<HTMLButtonElement>("timelapse-play");
    button.textContent = "Pause";
    while (this.status.playing) {
      const started = performance.now();
      // Each date stays on the map at least its time; a date slower to load than that is shown when it is there.
      await this.goTo((Math.max(this.status.shown, 0) + 1) % this.status.dates.length);
      await sleep(Math.max(0, 1000 / this.speed() - (performance.now() - started)));
    }
  }

  pause(): void {
    if (!this.status.playing) return;
    this.status.playing = false;
    const button = byId<HTMLButtonElement>("timelapse-play");
    button.textContent = "Play";
  }

  /** Take the time-lapse off the map and delete its service; the layer panel's layer comes back. */
  close(): void {
    this.pause();
    const service = this.status.service;
    Object.assign(this.status, { service: null, shown: -1, wanted: -1, tiles: null });
    this.removeLayers();
    byId("timelapse-controls").hidden = true;
    byId("timelapse-title-note").textContent = "";
    if (service) deleteService(service.id).catch(() => undefined);
  }

  private restyle(): void {
    if (!this.status.service) return;
    const rendering = styleRendering(this.kind);
    if (JSON.stringify(rendering) === JSON.stringify(this.rendering)) return;
    this.rendering = rendering;
    const shown = this.status.shown;
    this.status.shown = -1; // the same date, drawn anew
    void this.goTo(shown >= 0 ? shown : 0);
  }

  /** The export's frame width: the area's width at the collection's resolution, at most DEFAULT_WIDTH. */
  private exportSize(area: BBox): void {
    const input = byId<HTMLInputElement>("timelapse-width");
    const native = this.nativeWidth(area);
    if (native !== null) {
      input.value = String(Math.max(16, Math.min(DEFAULT_WIDTH, native)));
      input.max = String(native);
    } else {
      input.value = "";
      input.placeholder = "the collection's own";
    }
  }

  /** The area's width in the collection's pixels (null where the collection does not say its resolution in metres). */
  private nativeWidth(area: BBox): number | null {
    const step = this.step();
    return step !== null ? Math.round(areaWidthMetres(area) / step) : null;
  }

  private step(): number | null {
    const dimensions = (this.search.state.collection?.["cube:dimensions"] ?? {}) as Record<string, { type: string; step?: number | null; reference_system?: unknown }>;
    const x = Object.values(dimensions).find((d) => d.type === "spatial" && (d as { axis?: string }).axis !== "y");
    // A resolution in degrees (EPSG:4326) is not turned into metres here: such a collection is exported at its own resolution.
    return x?.step && x.reference_system !== 4326 ? x.step : null;
  }

  /** The time-lapse as a file made on the server (POST /result), offered as a download. */
  async export(format: "GIF" | "MP4"): Promise<void> {
    const made = this.plan();
    if (!made) return;
    clearError();
    const area = made.request.area!;
    if (!this.widthChosen) this.exportSize(area); // the default follows the area until the person sets a width
    const width = Number(byId<HTMLInputElement>("timelapse-width").value);
    const native = this.nativeWidth(area);
    if (native !== null && (!Number.isFinite(width) || width < 16)) return showError("The width must be at least 16 pixels.", "Export");
    const graph = { ...made.layer.graph } as Record<string, { process_id: string; arguments: Record<string, unknown>; result?: boolean }>;
    let last = Object.keys(graph).find((id) => graph[id].result)!;
    graph[last] = { ...graph[last], result: false };
    const metres = areaWidthMetres(area);
    if (native !== null && width < native) {
      // Fewer pixels than the collection has: resample (nearest, as the map's tiles are drawn) to the width asked for.
      graph.resample = { process_id: "resample_spatial", arguments: { data: { from_node: last }, resolution: Math.round((metres / width) * 100) / 100, method: "near" } };
      last = "resample";
    }
    const rendering = made.rendering;
    graph.save = {
      process_id: "save_result",
      arguments: {
        data: { from_node: last }, format,
        options: { range: rendering.range, gamma: rendering.gamma, fps: this.speed(), ...(rendering.colormap ? { colormap: rendering.colormap } : {}) },
      },
      result: true,
    };
    const button = byId<HTMLButtonElement>(format === "GIF" ? "timelapse-gif" : "timelapse-mp4");
    button.disabled = true;
    const link = byId<HTMLAnchorElement>("timelapse-download");
    link.hidden = true;
    const done = working(`Making the ${format} of ${made.layer.title}…`);
    try {
      const { blob: file } = await resultFile(graph);
      const [first, lastDate] = made.request.dates;
      const name = `timelapse-${made.request.kind}-${first}-${lastDate}.${format.toLowerCase()}`;
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(file);
      link.download = name;
      link.textContent = `Download ${name} (${formatBytes(file.size)})`;
      link.hidden = false;
      link.click(); // the browser saves it; the link stays for another copy
    } catch (error) {
      showError(error, `Export ${format}`);
    } finally {
      button.disabled = false;
      done();
    }
  }
}
