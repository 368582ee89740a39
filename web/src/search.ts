// The search panel: a collection, an area (the map's view, or one drawn, typed or uploaded: area.ts), dates
// and a maximum cloud cover; the scenes found are listed (date, cloud cover), put on a timeline (timeline.ts)
// and drawn as footprints. Picking one, in the list or on the timeline, sets the layer's date.
import { collection as describeCollection, collections, searchItems, type Collection, type Item } from "./api";
import { AreaPanel, boxPolygon, type ChosenArea } from "./area";
import type { BBox, MapView } from "./map";
import { CLEAR_CLOUD, latestClear, Timeline } from "./timeline";
import { byId, clearError, showError, working } from "./ui";

export { boxPolygon };

export interface SearchState {
  collection: Collection | null;
  area: BBox | null; // the search's area (the bounding box of `geometry`): the one chosen, else the view's at the last search (null before one, and after "Clear area")
  geometry: GeoJSON.Polygon | GeoJSON.MultiPolygon | null; // the area itself (a drawn, typed or uploaded one, else the view's box)
  period: [string, string]; // the date inputs
  scene: Item | null; // the scene picked
  items: Item[]; // the scenes the last search found, in date order (oldest first)
}

export type OnChange = (state: SearchState) => void;

const LATEST_CLEAR = `the newest scene with at most ${CLEAR_CLOUD} % cloud`;
const day = (datetime: string | null) => (datetime ?? "").slice(0, 10);

/** The scene's quicklook, if this server serves it: another host's would be a request leaving the server. */
function quicklookOf(item: Item): string | null {
  const asset = Object.values(item.assets ?? {}).find((a) => a.roles?.includes("thumbnail") || a.roles?.includes("overview"));
  if (!asset || !/^image\/(png|jpeg|webp)$/.test(asset.type ?? "")) return null;
  const url = new URL(asset.href, window.location.href);
  return url.origin === window.location.origin ? url.href : null;
}

export class SearchPanel {
  readonly state: SearchState = { collection: null, area: null, geometry: null, period: ["", ""], scene: null, items: [] };
  private items: Item[] = [];
  readonly area: AreaPanel;
  readonly timeline: Timeline;

  constructor(private readonly map: MapView, private readonly onChange: OnChange) {
    this.area = new AreaPanel(map, (chosen) => this.areaChanged(chosen));
    this.timeline = new Timeline(byId("timeline"), (item) => this.pick(item));
    byId("latest-clear").addEventListener("click", () => this.pickLatestClear());
    byId<HTMLFormElement>("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.search();
    });
    byId<HTMLSelectElement>("collection").addEventListener("change", () => void this.pickCollection(byId<HTMLSelectElement>("collection").value));
    const cloud = byId<HTMLInputElement>("max-cloud");
    cloud.addEventListener("input", () => (byId("max-cloud-value").textContent = `${cloud.value} %`));
    for (const id of ["date-from", "date-to"]) byId(id).addEventListener("change", () => this.readPeriod());
  }

  /** Fill the collection picker and show the first collection. */
  async load(): Promise<void> {
    const done = working("Loading collections…");
    try {
      const list = await collections();
      const select = byId<HTMLSelectElement>("collection");
      select.replaceChildren(...list.map((c) => new Option(c.title ? `${c.title} (${c.id})` : c.id, c.id)));
      if (list.length === 0) throw new Error("This server offers no collection.");
      await this.pickCollection(list[0].id);
    } catch (error) {
      showError(error, "Collections");
    } finally {
      done();
    }
  }

  private async pickCollection(id: string): Promise<void> {
    const done = working(`Reading ${id}…`);
    try {
      const c = await describeCollection(id);
      this.state.collection = c;
      const bbox = c.extent.spatial.bbox[0] as BBox;
      this.map.showExtent(bbox);
      const [start, end] = c.extent.temporal.interval[0] ?? [null, null];
      if (start) byId<HTMLInputElement>("date-from").value = day(start);
      if (end) byId<HTMLInputElement>("date-to").value = day(end);
      byId("collection-info").textContent = `${day(start) || "open"} to ${day(end) || "now"}; the dashed outline is its extent.`;
      this.readPeriod();
      this.showScenes([]);
    } catch (error) {
      showError(error, `Collection ${id}`);
    } finally {
      done();
    }
  }

  private readPeriod(): void {
    this.state.period = [byId<HTMLInputElement>("date-from").value, byId<HTMLInputElement>("date-to").value];
    this.onChange(this.state);
  }

  async search(): Promise<void> {
    const c = this.state.collection;
    if (!c) return;
    this.readPeriod();
    const [from, to] = this.state.period;
    if (!from || !to || from > to) {
      showError("Choose a start date on or before the end date.", "Search");
      return;
    }
    clearError();
    const chosen = this.area.chosen;
    const area = chosen?.bbox ?? this.map.viewBBox();
    const maxCloud = Number(byId<HTMLInputElement>("max-cloud").value);
    const button = byId<HTMLButtonElement>("search-button");
    button.disabled = true;
    byId("scene-count").textContent = "Searching…";
    const done = working("Searching scenes…");
    try {
      const items = await searchItems({ collection: c.id, bbox: area, from, to, maxCloud });
      items.sort((a, b) => day(a.properties.datetime).localeCompare(day(b.properties.datetime)));
      this.state.area = area;
      this.state.geometry = chosen?.geometry ?? boxPolygon(area);
      this.showScenes(items, [from, to]);
    } catch (error) {
      byId("scene-count").textContent = "";
      showError(error, "Search");
    } finally {
      button.disabled = false;
      done();
    }
  }

  private showScenes(items: Item[], period: [string, string] | null = null): void {
    this.items = items;
    this.state.items = items;
    this.state.scene = null;
    this.map.showScenes(items);
    const list = byId("scenes");
    list.replaceChildren(...items.map((item) => this.sceneEntry(item)));
    byId("scene-count").textContent = this.state.area === null || period === null ? "" :
      items.length === 0 ? "No scene matches: widen the dates, the cloud cover or the area." :
      `${items.length} scene${items.length === 1 ? "" : "s"}. Pick one to show it.`;
    this.timeline.show(items, period ?? ["", ""]);
    byId<HTMLButtonElement>("latest-clear").disabled = period === null; // after a search, even one that found nothing
    byId("latest-clear-note").textContent = LATEST_CLEAR;
    this.onChange(this.state);
  }

  /** A new area: the layers use it at once; the scenes listed are the last search's until the next one. */
  private areaChanged(chosen: ChosenArea | null): void {
    this.state.area = chosen?.bbox ?? null;
    this.state.geometry = chosen?.geometry ?? null;
    if (this.items.length > 0 || byId("scene-count").textContent) {
      byId("scene-count").textContent = "The area changed: search again for its scenes. The scenes below are the last search's.";
    }
    this.onChange(this.state);
  }

  /** The shortcut: the newest scene with at most CLEAR_CLOUD % cloud of the last search (its area and dates). */
  pickLatestClear(): Item | null {
    const item = latestClear(this.items);
    const note = byId("latest-clear-note");
    if (item) {
      this.pick(item);
      note.textContent = `Picked ${item.properties.datetime?.slice(0, 10)}: the newest scene with at most ${CLEAR_CLOUD} % cloud.`;
    } else {
      note.textContent = `No scene of this search has at most ${CLEAR_CLOUD} % cloud: none picked. Widen the dates or the cloud cover.`;
    }
    return item;
  }

  private sceneEntry(item: Item): HTMLLIElement {
    const entry = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "scene";
    button.dataset.id = item.id;
    button.setAttribute("aria-pressed", "false");
    const cloud = item.properties["eo:cloud_cover"];
    const date = document.createElement("span");
    date.className = "date";
    date.textContent = day(item.properties.datetime);
    const clouds = document.createElement("span");
    clouds.className = "cloud";
    clouds.textContent = typeof cloud === "number" ? `${cloud.toFixed(0)} % cloud` : "cloud cover unknown";
    const quicklook = quicklookOf(item);
    if (quicklook) {
      const picture = document.createElement("img");
      picture.className = "quicklook";
      picture.src = quicklook;
      picture.alt = "";  // the date and cloud cover say what it is
      picture.loading = "lazy";
      picture.width = picture.height = 40;
      button.append(picture);
    }
    button.append(date, clouds);
    button.title = item.id;
    button.addEventListener("click", () => this.pick(item));
    entry.append(button);
    return entry;
  }

  pick(item: Item | null): void {
    this.state.scene = item;
    for (const button of byId("scenes").querySelectorAll<HTMLButtonElement>("button.scene")) {
      button.setAttribute("aria-pressed", String(item !== null && button.dataset.id === item.id));
    }
    byId("latest-clear-note").textContent = LATEST_CLEAR;
    this.scrollListTo(item);
    this.timeline.select(item?.id ?? null);
    this.map.selectScene(item?.id ?? null);
    this.onChange(this.state);
  }

  /** The picked scene in view in the list (picked on the timeline, say), without scrolling the panel. */
  private scrollListTo(item: Item | null): void {
    const list = byId("scenes");
    const entry = item && list.querySelector<HTMLElement>(`button.scene[data-id="${CSS.escape(item.id)}"]`);
    if (!entry) return;
    const [box, row] = [list.getBoundingClientRect(), entry.getBoundingClientRect()];
    if (row.top < box.top) list.scrollTop += row.top - box.top;
    else if (row.bottom > box.bottom) list.scrollTop += row.bottom - box.bottom;
  }

  /** The scenes of one date (for tests and links): pick the first found that day. */
  pickDate(date: string): boolean {
    const item = this.items.find((i) => day(i.properties.datetime) === date) ?? null;
    if (item) this.pick(item);
    return item !== null;
  }
}
