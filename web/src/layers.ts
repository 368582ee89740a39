// The layer panel: true colour, false colour, NDVI, a band maths formula or SCL's cloud mask, one date or
// reduced over the dates (mean, median, max), clouds masked or not, made a map service (POST /services)
// and shown on the map; colours, range and gamma restyle it through the tile URL, without a new service.
import { createService, deleteService, type Service } from "./api";
import { FormulaError } from "./formula";
import { DEFAULT_RENDERING, layerGraph, REDUCER_NAMES, tileUrl, withGain, type LayerGraph, type LayerKind, type LayerRequest, type Rendering, type TimeReducer } from "./graphs";
import type { MapView } from "./map";
import type { SearchState } from "./search";
import { byId, clearError, showError, working } from "./ui";

export interface LayerStatus {
  service: Service | null;
  tiles: string | null; // the tile URL on the map
  title: string | null;
  layer: LayerGraph | null; // the process graph on the map (charts, downloads and "see the code" start from it)
  request: LayerRequest | null; // what it was made from
}

export class LayerPanel {
  readonly status: LayerStatus = { service: null, tiles: null, title: null, layer: null, request: null };
  private rendering: Rendering = DEFAULT_RENDERING.truecolor;
  private search: SearchState | null = null;
  /** Services that others still show (compare's A and B): not deleted when the layer changes. */
  keep: (serviceId: string) => boolean = () => false;
  /** Called after a layer is on the map (compare stops its swipe, the code panel shows the new code). */
  readonly shown: ((status: LayerStatus) => void)[] = [];

  constructor(private readonly map: MapView) {
    byId<HTMLFormElement>("layer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.show();
    });
    for (const radio of document.querySelectorAll<HTMLInputElement>("input[name=kind]")) {
      radio.addEventListener("change", () => this.kindChanged());
    }
    const style = byId<HTMLFormElement>("style-form");
    style.addEventListener("submit", (event) => event.preventDefault());
    style.addEventListener("change", () => this.restyle());
    byId("layer-time").addEventListener("change", () => this.dateNote());
    this.kindChanged();
  }

  kind(): LayerKind {
    return (document.querySelector<HTMLInputElement>("input[name=kind]:checked")?.value ?? "truecolor") as LayerKind;
  }

  /** One date (null) or a reduction over the period's dates. */
  reducer(): TimeReducer | null {
    const value = byId<HTMLSelectElement>("layer-time").value;
    return value === "mean" || value === "median" || value === "max" ? value : null;
  }

  /** What the search panel chose: the layer's date (the scene's, else the period) and area. */
  searchChanged(state: SearchState): void {
    this.search = state;
    this.dateNote();
  }

  private dateNote(): void {
    const state = this.search;
    const note = byId("layer-date");
    const reducer = this.reducer();
    if (!state) note.textContent = "";
    else if (reducer && state.period[0]) note.textContent = `Dates: ${state.period[0]} to ${state.period[1]}, each pixel the ${REDUCER_NAMES[reducer]} of its dates.`;
    else if (state.scene?.properties.datetime) note.textContent = `Date: ${state.scene.properties.datetime.slice(0, 10)} (the scene picked).`;
    else if (state.period[0]) note.textContent = `Dates: ${state.period[0]} to ${state.period[1]}; where several scenes overlap, the latest is shown. Pick a scene for one date.`;
    else note.textContent = "";
  }

  private kindChanged(): void {
    const kind = this.kind();
    byId("formula-row").hidden = kind !== "formula";
    byId("mask-row").hidden = kind === "clouds"; // the cloud mask is the clouds themselves
    byId("clouds-legend").hidden = kind !== "clouds";
    this.setRendering(DEFAULT_RENDERING[kind]);
  }

  private setRendering(rendering: Rendering): void {
    this.rendering = { ...rendering };
    byId("colormap-row").hidden = rendering.colormap === null;
    if (rendering.colormap) byId<HTMLSelectElement>("colormap").value = rendering.colormap;
    byId<HTMLInputElement>("range-min").value = String(rendering.range[0]);
    byId<HTMLInputElement>("range-max").value = String(rendering.range[1]);
    byId<HTMLInputElement>("gamma").value = String(rendering.gamma);
    byId<HTMLInputElement>("gain").value = "1";
  }

  private readRendering(): Rendering | null {
    const low = Number(byId<HTMLInputElement>("range-min").value);
    const high = Number(byId<HTMLInputElement>("range-max").value);
    const gamma = Number(byId<HTMLInputElement>("gamma").value);
    const gain = Number(byId<HTMLInputElement>("gain").value);
    if (!Number.isFinite(low) || !Number.isFinite(high) || !(low < high)) {
      showError("The range's first value must be below its second.", "Rendering");
      return null;
    }
    if (!Number.isFinite(gamma) || gamma <= 0) {
      showError("Gamma must be a number above 0 (1 changes nothing, above 1 brightens).", "Rendering");
      return null;
    }
    if (!Number.isFinite(gain) || gain <= 0) {
      showError("Gain must be a number above 0 (1 changes nothing, 2 draws values twice as bright).", "Rendering");
      return null;
    }
    return { colormap: this.rendering.colormap === null ? null : byId<HTMLSelectElement>("colormap").value, range: withGain([low, high], gain), gamma };
  }

  private restyle(): void {
    const rendering = this.readRendering();
    if (!rendering) return;
    clearError();
    this.rendering = rendering;
    if (this.status.service) {
      this.status.tiles = tileUrl(this.status.service.url, rendering);
      this.map.restyleLayer(this.status.tiles);
    }
  }

  /** Make the layer's service and put its tiles on the map. */
  async show(): Promise<void> {
    const search = this.search;
    if (!search?.collection) return showError("Pick a collection first.", "Layer");
    const reducer = this.reducer();
    const dates: [string, string] = search.scene?.properties.datetime && !reducer
      ? [search.scene.properties.datetime.slice(0, 10), search.scene.properties.datetime.slice(0, 10)]
      : search.period;
    if (!dates[0] || !dates[1]) return showError("Choose the dates (or search and pick a scene) first.", "Layer");
    let layer;
    let request: LayerRequest;
    try {
      request = {
        kind: this.kind(), formula: byId<HTMLInputElement>("formula").value, collection: search.collection, dates, area: search.area,
        reducer, maskClouds: byId<HTMLInputElement>("mask-clouds").checked,
      };
      layer = layerGraph(request);
    } catch (error) {
      // A wrong formula is the person's to fix: say what is wrong, send nothing.
      return showError(error, error instanceof FormulaError ? "Formula" : "Layer");
    }
    // The controls hold the kind's defaults (set when the kind was chosen) or what the person changed since.
    const rendering = this.readRendering();
    if (!rendering) return;
    await this.display(layer, request, rendering);
  }

  /** Make a layer's service and put it on the map (a difference from compare comes here too, with no request). */
  async display(layer: LayerGraph, request: LayerRequest | null, rendering?: Rendering): Promise<void> {
    if (!rendering) this.setRendering(layer.rendering);
    rendering = rendering ?? layer.rendering;
    clearError();
    const button = byId<HTMLButtonElement>("layer-button");
    button.disabled = true;
    const done = working(`Making the layer “${layer.title}”…`);
    try {
      const configuration = { range: rendering.range, gamma: rendering.gamma, ...(rendering.colormap ? { colormap: rendering.colormap } : {}) };
      const service = await createService(layer.title, layer.graph, configuration);
      const previous = this.status.service;
      const info = service.attributes?.layers?.[0];
      this.rendering = rendering;
      Object.assign(this.status, { service, tiles: tileUrl(service.url, rendering), title: layer.title, layer, request });
      this.map.showLayer(this.status.tiles!, { minzoom: info?.minzoom, maxzoom: info?.maxzoom, bounds: info?.bbox });
      this.zoomHint(info?.minzoom);
      if (previous && !this.keep(previous.id)) deleteService(previous.id).catch(() => undefined); // the old layer's service is not needed any more
      for (const listener of this.shown) listener(this.status);
    } catch (error) {
      showError(error, "Layer");
    } finally {
      button.disabled = false;
      done();
    }
  }

  private zoomHint(minzoom: number | undefined): void {
    const hint = byId("map-hint");
    const update = () => {
      const low = minzoom !== undefined && this.map.map.getZoom() < minzoom - 0.5;
      hint.hidden = !low;
      hint.textContent = low ? `Zoom in to see the layer: it is drawn from zoom level ${minzoom} on.` : "";
    };
    this.map.map.off("zoomend", this.zoomListener);
    this.zoomListener = update;
    this.map.map.on("zoomend", update);
    update();
  }

  private zoomListener = () => {};
}
