// The map: MapLibre on a plain background (no request leaves the server), the collection's extent and
// the scenes' footprints as GeoJSON, and one raster layer at a time: a map service's tiles. Footprints
// are outlines only: a fill, stacked over the many scenes of one tile, would tint the layer below.
// Compare (compare.ts, swipe.ts) adds rasters of its own beside the layer, and a second map.
import maplibregl, { type GeoJSONSource, type RasterTileSource, type StyleSpecification } from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
import type { FeatureCollection, Geometry } from "geojson";
import type { Item } from "./api";

export type BBox = [number, number, number, number]; // west, south, east, north (WGS84)

const EMPTY: FeatureCollection = { type: "FeatureCollection", features: [] };
const LAYER_SOURCE = "layer";

export function baseStyle(basemap: string | null): StyleSpecification {
  const style: StyleSpecification = {
    version: 8,
    // No paint transitions (a picked scene's outline changes at once): like the labels' fade (MAP_OPTIONS),
    // each would keep the map redrawing at full frame rate for its 300 ms.
    transition: { duration: 0, delay: 0 },
    sources: {
      extent: { type: "geojson", data: EMPTY },
      scenes: { type: "geojson", data: EMPTY, promoteId: "id" },
      area: { type: "geojson", data: EMPTY },
    },
    layers: [{ id: "background", type: "background", paint: { "background-color": "#e9e7e2" } }],
  };
  if (basemap) {
    style.sources.basemap = { type: "raster", tiles: [basemap], tileSize: 256, attribution: "Base map: set by the server's operator" };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  style.layers.push(
    { id: "extent", type: "line", source: "extent", paint: { "line-color": "#4a4a4a", "line-width": 1.5, "line-dasharray": [3, 2] } },
    {
      id: "scenes-line", type: "line", source: "scenes",
      paint: {
        "line-color": ["case", ["boolean", ["feature-state", "selected"], false], "#d9480f", "#2f6fb0"],
        "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 3, 1],
      },
    },
    // The search's area (drawn, typed or uploaded), over the footprints.
    { id: "area-line", type: "line", source: "area", paint: { "line-color": "#7b2cbf", "line-width": 2.5 } },
  );
  return style;
}

export interface RasterOptions {
  minzoom?: number;
  maxzoom?: number;
  bounds?: number[];
}

/** A map service's tiles as a raster source and layer ``id`` on ``map``, under the outlines (``before``) if there are any. */
export function addRaster(map: maplibregl.Map, id: string, tiles: string, options: RasterOptions): void {
  removeRaster(map, id);
  map.addSource(id, {
    type: "raster", tiles: [tiles], tileSize: 256,
    minzoom: options.minzoom ?? 0, maxzoom: options.maxzoom ?? 18,
    ...(options.bounds && options.bounds.length === 4 ? { bounds: options.bounds as BBox } : {}),
  });
  const before = map.getLayer("extent") ? "extent" : undefined;
  map.addLayer({ id, type: "raster", source: id, paint: { "raster-resampling": "nearest", "raster-fade-duration": 0 } }, before);
}

export function removeRaster(map: maplibregl.Map, id: string): void {
  if (map.getLayer(id)) map.removeLayer(id);
  if (map.getSource(id)) map.removeSource(id);
}

/**
 * What every map of the page shares. ``fadeDuration: 0``: the page has no labels to fade, yet with
 * MapLibre's default (300 ms) each tile that arrives marks the label placement stale and the map
 * redraws at full frame rate until the last tile is in: a core busy for as long as a slow layer
 * computes (measured: ~35 frames/s, a whole core of a laptop without a GPU, while the median of
 * two months of tiles loads). Without it the map draws once per tile.
 */
export const MAP_OPTIONS = { dragRotate: false, pitchWithRotate: false, fadeDuration: 0 } as const;

export class MapView {
  readonly map: maplibregl.Map;
  private selected: string | null = null;
  private loadedOnce: Promise<void>;

  constructor(container: HTMLElement, basemap: string | null) {
    this.map = new maplibregl.Map({
      container,
      style: baseStyle(basemap),
      center: [10, 50],
      zoom: 4,
      attributionControl: { compact: true },
      ...MAP_OPTIONS,
    });
    this.map.touchZoomRotate.disableRotation();
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    this.loadedOnce = new Promise((resolve) => this.map.once("load", () => resolve()));
  }

  ready(): Promise<void> {
    return this.loadedOnce;
  }

  /** The current view as a WGS84 box, clamped to valid longitudes and latitudes. */
  viewBBox(): BBox {
    const b = this.map.getBounds();
    const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)];
  }

  /** The collection's spatial extent as a dashed outline; the view goes there. */
  showExtent(bbox: BBox): void {
    const [w, s, e, n] = bbox;
    (this.map.getSource("extent") as GeoJSONSource).setData({
      type: "Feature", properties: {},
      geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
    });
    this.map.fitBounds([[w, s], [e, n]], { padding: 24, animate: false });
  }

  /** The search's area as an outline (null: none, the view is the area). */
  showArea(geometry: Geometry | null): void {
    (this.map.getSource("area") as GeoJSONSource).setData(geometry ? { type: "Feature", properties: {}, geometry } : EMPTY);
  }

  fitArea([w, s, e, n]: BBox): void {
    this.map.fitBounds([[w, s], [e, n]], { padding: 40, animate: false, maxZoom: 15 });
  }

  showScenes(items: Item[]): void {
    this.selected = null;
    const features = items.filter((item) => item.geometry).map((item) => ({
      type: "Feature" as const, id: item.id, geometry: item.geometry!, properties: { id: item.id, datetime: item.properties.datetime },
    }));
    (this.map.getSource("scenes") as GeoJSONSource).setData({ type: "FeatureCollection", features });
  }

  selectScene(id: string | null): void {
    if (this.selected) this.map.setFeatureState({ source: "scenes", id: this.selected }, { selected: false });
    this.selected = id;
    if (id) this.map.setFeatureState({ source: "scenes", id }, { selected: true });
  }

  /** Show a map service's tiles (replacing the layer before), under the footprints. */
  showLayer(tiles: string, options: { minzoom?: number; maxzoom?: number; bounds?: number[] }): void {
    this.removeLayer();
    this.map.addSource(LAYER_SOURCE, {
      type: "raster", tiles: [tiles], tileSize: 256,
      minzoom: options.minzoom ?? 0, maxzoom: options.maxzoom ?? 18,
      ...(options.bounds && options.bounds.length === 4 ? { bounds: options.bounds as BBox } : {}),
    });
    this.map.addLayer({ id: LAYER_SOURCE, type: "raster", source: LAYER_SOURCE, paint: { "raster-resampling": "nearest", "raster-fade-duration": 0 } }, "extent");
  }

  /** Hide or show again the layer (compare draws its own layers meanwhile). */
  layerVisible(visible: boolean): void {
    if (this.map.getLayer(LAYER_SOURCE)) this.map.setLayoutProperty(LAYER_SOURCE, "visibility", visible ? "visible" : "none");
  }

  /** New rendering options: the same service, other tile URLs (MapLibre reloads the tiles). */
  restyleLayer(tiles: string): void {
    (this.map.getSource(LAYER_SOURCE) as RasterTileSource | undefined)?.setTiles([tiles]);
  }

  removeLayer(): void {
    if (this.map.getLayer(LAYER_SOURCE)) this.map.removeLayer(LAYER_SOURCE);
    if (this.map.getSource(LAYER_SOURCE)) this.map.removeSource(LAYER_SOURCE);
  }
}
