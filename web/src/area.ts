// The search's area: the map's view (the default), or a rectangle or polygon drawn on the map (terra-draw,
// loaded on first use so that the first map is not kept waiting), a typed box, or a GeoJSON file. Whatever
// its source, the area is one GeoJSON (Multi)Polygon in WGS84, checked here, and outlined on the map.
import type { Polygon, MultiPolygon, Position } from "geojson";
import type { TerraDraw } from "terra-draw";
import type { BBox, MapView } from "./map";
import { byId, clearError, formatBytes, showError, working } from "./ui";

export type AreaGeometry = Polygon | MultiPolygon;

export interface ChosenArea {
  geometry: AreaGeometry;
  bbox: BBox; // west, south, east, north of `geometry`
  source: string; // in words: "a drawn rectangle", "the typed box", "the file places.geojson"
}

export const MAX_FILE_BYTES = 1_000_000; // a region's outline is a few kB; more is likely not an area at all

/** Something a person gave that is no area: the message says what to change. */
export class AreaError extends Error {}

/** A bounding box as a GeoJSON polygon (west, south, east, north in WGS84). */
export function boxPolygon([w, s, e, n]: BBox): Polygon {
  return { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
}

const NAMES = ["West", "South", "East", "North"];

/** The typed box, checked: four numbers in degrees, within the globe, west below east and south below north. */
export function checkBox(values: string[]): BBox {
  const numbers = values.map((value, i) => {
    const number = value.trim() === "" ? NaN : Number(value);
    if (!Number.isFinite(number)) throw new AreaError(`${NAMES[i]} must be a number of degrees (e.g. 7.05), not “${value.trim()}”.`);
    return number;
  });
  numbers.forEach((number, i) => {
    const limit = i % 2 === 0 ? 180 : 90;
    if (Math.abs(number) > limit) throw new AreaError(`${NAMES[i]} must be between -${limit} and ${limit} degrees (WGS84); it is ${number}.`);
  });
  const [w, s, e, n] = numbers;
  if (!(w < e)) throw new AreaError(`West (${w}) must be less than east (${e}); boxes across the 180° meridian are not supported.`);
  if (!(s < n)) throw new AreaError(`South (${s}) must be less than north (${n}).`);
  return [w, s, e, n];
}

function checkRing(ring: unknown, where: string): Position[] {
  if (!Array.isArray(ring) || ring.length < 4) throw new AreaError(`${where}: a ring needs at least four positions (the first repeated last).`);
  for (const position of ring) {
    if (!Array.isArray(position) || position.length < 2 || !position.every((v) => typeof v === "number" && Number.isFinite(v))) {
      throw new AreaError(`${where}: every position must be [longitude, latitude] in numbers, not ${JSON.stringify(position)?.slice(0, 40)}.`);
    }
    const [lon, lat] = position as number[];
    if (Math.abs(lon) > 180 || Math.abs(lat) > 90) {
      throw new AreaError(`${where}: [${lon}, ${lat}] is not a longitude and latitude in degrees. ` +
        "GeoJSON is WGS84 (EPSG:4326); reproject the file (a projected CRS gives metres).");
    }
  }
  const [first, last] = [ring[0] as number[], ring[ring.length - 1] as number[]];
  if (first[0] !== last[0] || first[1] !== last[1]) throw new AreaError(`${where}: a ring must end where it starts.`);
  return ring as Position[];
}

function polygonsOf(value: unknown, where: string): Position[][][] {
  const object = value as { type?: unknown; coordinates?: unknown; geometry?: unknown; features?: unknown } | null;
  const type = typeof object === "object" && object !== null ? object.type : undefined;
  const rings = (polygon: unknown, at: string) => {
    if (!Array.isArray(polygon) || polygon.length === 0) throw new AreaError(`${at}: a polygon needs at least one ring.`);
    return polygon.map((ring, i) => checkRing(ring, i === 0 ? at : `${at}, hole ${i}`));
  };
  switch (type) {
    case "Polygon":
      return [rings(object!.coordinates, where)];
    case "MultiPolygon":
      if (!Array.isArray(object!.coordinates) || object!.coordinates.length === 0) throw new AreaError(`${where}: the MultiPolygon is empty.`);
      return object!.coordinates.map((polygon, i) => rings(polygon, `${where}, polygon ${i + 1}`));
    case "Feature":
      if (!object!.geometry) throw new AreaError(`${where}: the Feature has no geometry.`);
      return polygonsOf(object!.geometry, where);
    case "FeatureCollection": {
      const features = Array.isArray(object!.features) ? object!.features : [];
      if (features.length === 0) throw new AreaError(`${where}: the FeatureCollection has no features.`);
      return features.flatMap((feature, i) => polygonsOf(feature, `feature ${i + 1}`));
    }
    default:
      throw new AreaError(`${where} is ${typeof type === "string" ? `a ${type}` : "no GeoJSON object"}: an area must be a Polygon or ` +
        "MultiPolygon, or a Feature or FeatureCollection of them.");
  }
}

/** A GeoJSON document's area: its polygons as one Polygon or MultiPolygon; an AreaError says what is wrong. */
export function areaFromGeoJSON(text: string): AreaGeometry {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new AreaError(`The file is not JSON (${(error as Error).message}).`);
  }
  const polygons = polygonsOf(document, "The file");
  return polygons.length === 1 ? { type: "Polygon", coordinates: polygons[0] } : { type: "MultiPolygon", coordinates: polygons };
}

export function bboxOf(geometry: AreaGeometry): BBox {
  const positions = (geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates).flat(2);
  const lons = positions.map((p) => p[0]);
  const lats = positions.map((p) => p[1]);
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

const DRAW_HINTS: Record<string, string> = {
  rectangle: "Drag a rectangle on the map (or click two corners). Esc cancels.",
  polygon: "Click the corners on the map; click the first corner again (or press Enter) to close it. Esc cancels.",
};

export class AreaPanel {
  chosen: ChosenArea | null = null; // null: the map's view at the time of the search
  private draw: TerraDraw | null = null;
  private drawing: string | null = null; // the mode being drawn

  constructor(private readonly map: MapView, private readonly onChange: (area: ChosenArea | null) => void) {
    for (const mode of ["rectangle", "polygon"]) byId(`draw-${mode}`).addEventListener("click", () => void this.toggleDrawing(mode));
    byId("area-clear").addEventListener("click", () => this.clear());
    byId("area-box-use").addEventListener("click", () => this.useBox());
    for (const id of ["area-west", "area-south", "area-east", "area-north"]) {
      // Enter in a box field takes the box (instead of submitting the search with the old area).
      byId(id).addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          this.useBox();
        }
      });
    }
    const file = byId<HTMLInputElement>("area-file");
    file.addEventListener("change", () => {
      const chosen = file.files?.[0];
      file.value = ""; // the same file again is a change again
      if (chosen) void this.useFile(chosen);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.drawing) this.stopDrawing();
    });
    this.render();
  }

  /** Choose an area (null: back to the map's view), outline it and tell the search. */
  choose(area: ChosenArea | null): void {
    this.chosen = area;
    this.map.showArea(area?.geometry ?? null);
    const fields = ["area-west", "area-south", "area-east", "area-north"].map((id) => byId<HTMLInputElement>(id));
    fields.forEach((field, i) => (field.value = area ? String(Number(area.bbox[i].toFixed(5))) : ""));
    this.render();
    this.onChange(area);
  }

  clear(): void {
    this.stopDrawing();
    clearError();
    this.choose(null);
  }

  private render(): void {
    const note = byId("area-note");
    if (this.drawing) note.textContent = DRAW_HINTS[this.drawing];
    else if (this.chosen) {
      const [w, s, e, n] = this.chosen.bbox.map((v) => v.toFixed(4));
      note.textContent = `Area: ${this.chosen.source} (outlined in purple), ${w}, ${s} to ${e}, ${n} (west, south to east, north).`;
    } else note.textContent = "Area: the map's current view (move or zoom the map to change it), or draw, type or upload one.";
    byId<HTMLButtonElement>("area-clear").disabled = this.chosen === null && this.drawing === null;
    for (const mode of ["rectangle", "polygon"]) byId(`draw-${mode}`).setAttribute("aria-pressed", String(this.drawing === mode));
  }

  private useBox(): void {
    try {
      const bbox = checkBox(["area-west", "area-south", "area-east", "area-north"].map((id) => byId<HTMLInputElement>(id).value));
      clearError();
      this.stopDrawing();
      this.choose({ geometry: boxPolygon(bbox), bbox, source: "the typed box" });
      this.map.fitArea(bbox);
    } catch (error) {
      showError(error, "Area");
    }
  }

  private async useFile(file: File): Promise<void> {
    try {
      if (file.size > MAX_FILE_BYTES) {
        throw new AreaError(`“${file.name}” is ${formatBytes(file.size)}; an area's file may be at most ${formatBytes(MAX_FILE_BYTES)}. ` +
          "Simplify the outline or keep only the area's polygon.");
      }
      const geometry = areaFromGeoJSON(await file.text());
      clearError();
      this.stopDrawing();
      const bbox = bboxOf(geometry);
      this.choose({ geometry, bbox, source: `the file “${file.name}”` });
      this.map.fitArea(bbox);
    } catch (error) {
      showError(error instanceof AreaError ? new AreaError(error.message.replace(/^The file/, `“${file.name}”`)) : error, "Area");
    }
  }

  private async toggleDrawing(mode: string): Promise<void> {
    if (this.drawing === mode) return this.stopDrawing();
    clearError();
    try {
      const draw = await this.drawTool();
      draw.clear();
      draw.setMode(mode);
      this.drawing = mode;
      this.map.map.getContainer().scrollIntoView({ block: "nearest" }); // on a phone the map is above the panel
      this.render();
    } catch (error) {
      showError(error, "Drawing");
    }
  }

  private stopDrawing(): void {
    if (!this.draw || !this.drawing) return;
    this.drawing = null;
    this.draw.clear();
    this.draw.setMode("static"); // terra-draw's mode that leaves the map to pan and zoom
    this.render();
  }

  /** terra-draw with its MapLibre adapter, loaded and started on the first drawing. */
  private async drawTool(): Promise<TerraDraw> {
    if (this.draw) return this.draw;
    const done = working("Loading the drawing tool…");
    try {
      const [{ TerraDraw, TerraDrawRectangleMode, TerraDrawPolygonMode }, { TerraDrawMapLibreGLAdapter }] =
        await Promise.all([import("terra-draw"), import("terra-draw-maplibre-gl-adapter")]);
      const styles = { fillColor: "#7b2cbf", fillOpacity: 0.08, outlineColor: "#7b2cbf", outlineWidth: 2 } as const;
      const draw = new TerraDraw({
        adapter: new TerraDrawMapLibreGLAdapter({ map: this.map.map }),
        modes: [
          new TerraDrawRectangleMode({ drawInteraction: "click-move-or-drag", styles }),
          new TerraDrawPolygonMode({ styles: { ...styles, closingPointColor: "#7b2cbf", closingPointWidth: 5 } }),
        ],
      });
      draw.start();
      draw.on("finish", (id) => {
        const feature = draw.getSnapshotFeature(id);
        // Leave terra-draw's own event handling before clearing what it just finished.
        setTimeout(() => this.finished(feature?.geometry as Polygon | undefined), 0);
      });
      this.draw = draw;
      return draw;
    } finally {
      done();
    }
  }

  private finished(geometry: Polygon | undefined): void {
    const mode = this.drawing;
    this.stopDrawing();
    if (!geometry || geometry.type !== "Polygon") return;
    try {
      polygonsOf(geometry, "The drawn area"); // a world drawn past the 180° meridian is no area
      this.choose({ geometry, bbox: bboxOf(geometry), source: mode === "polygon" ? "a drawn polygon" : "a drawn rectangle" });
    } catch (error) {
      showError(error, "Area");
    }
  }
}
