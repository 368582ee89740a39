// Two layers side by side: @maplibre/maplibre-gl-compare puts a second map over the first, moves both
// together and clips them at a bar the person drags: A on the main map left of the bar, B on the second
// map right of it. The bar's position is also a range input (the keyboard's way to move it).
import Compare from "@maplibre/maplibre-gl-compare";
import "@maplibre/maplibre-gl-compare/style.css";
import maplibregl from "maplibre-gl";
import { addRaster, baseStyle, MAP_OPTIONS, removeRaster, type MapView, type RasterOptions } from "./map";

export interface SwipeSide {
  tiles: string;
  options: RasterOptions;
}

const A_LAYER = "compare-a";
const B_LAYER = "compare-b";

export class Swipe {
  second: maplibregl.Map | null = null; // B's map (for tests and people debugging)
  private container: HTMLElement | null = null;
  private compare: Compare | null = null;

  constructor(private readonly view: MapView, private readonly basemap: string | null, private readonly moved: (fraction: number) => void) {}

  get active(): boolean {
    return this.compare !== null;
  }

  /** A left of the bar, B right of it, the bar at ``fraction`` of the map's width. */
  async start(a: SwipeSide, b: SwipeSide, fraction: number): Promise<void> {
    this.stop();
    const main = this.view.map;
    const container = document.createElement("div");
    container.id = "map-b";
    container.className = "map";
    container.setAttribute("role", "region");
    container.setAttribute("aria-label", "Map of layer B, right of the swipe bar");
    main.getContainer().after(container);
    this.container = container;
    const second = new maplibregl.Map({
      container, style: baseStyle(this.basemap), center: main.getCenter(), zoom: main.getZoom(),
      attributionControl: false, ...MAP_OPTIONS,
    });
    second.touchZoomRotate.disableRotation();
    second.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    this.second = second;
    await new Promise<void>((resolve) => second.once("load", () => resolve()));
    if (this.second !== second) return; // stopped meanwhile
    addRaster(main, A_LAYER, a.tiles, a.options);
    this.view.layerVisible(false);
    addRaster(second, B_LAYER, b.tiles, b.options);
    this.compare = new Compare(main, second, main.getContainer().parentElement!);
    this.compare.on("slideend", (event) => this.moved(event.currentPosition / this.width()));
    this.position(fraction);
  }

  /** Move the bar to ``fraction`` (0: all B, 1: all A) of the map's width. */
  position(fraction: number): void {
    this.compare?.setSlider(Math.max(0, Math.min(1, fraction)) * this.width());
  }

  /** The main map alone again, with the layer it had. */
  stop(): void {
    this.compare?.remove();
    this.compare = null;
    this.second?.remove();
    this.container?.remove();
    this.second = null;
    this.container = null;
    removeRaster(this.view.map, A_LAYER);
    this.view.layerVisible(true);
  }

  private width(): number {
    return this.view.map.getContainer().clientWidth;
  }
}
