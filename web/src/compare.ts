// The compare panel: the layer on the map kept as A or B (its map service kept alive for it), the two
// side by side with a swipe bar (swipe.ts), and B − A as one process graph (graphs.ts differenceGraph)
// made a map service and shown like any layer, in RdBu over −1..1.
import { deleteService, type Service } from "./api";
import { differenceGraph, type LayerGraph } from "./graphs";
import type { LayerPanel } from "./layers";
import type { MapView } from "./map";
import { Swipe, type SwipeSide } from "./swipe";
import { byId, clearError, showError } from "./ui";

export interface CompareSlot {
  layer: LayerGraph;
  service: Service;
  side: SwipeSide; // its tiles, as styled when it was kept
}

type Which = "a" | "b";

export class ComparePanel {
  readonly slots: Record<Which, CompareSlot | null> = { a: null, b: null };
  readonly swipe: Swipe;
  /** Called when A or B changes (the code panel lists them). */
  readonly changed: (() => void)[] = [];

  constructor(map: MapView, private readonly layers: LayerPanel, basemap: string | null) {
    this.swipe = new Swipe(map, basemap, (fraction) => (byId<HTMLInputElement>("swipe-position").value = String(Math.round(fraction * 100))));
    layers.keep = (id) => this.holds(id);
    // A new layer on the map is what the person wants to see: the swipe makes way for it.
    layers.shown.push((status) => {
      this.stopSwipe();
      const plan = status.layer?.plan;
      byId("difference-legend").hidden = !(plan && "a" in plan);
    });
    byId("compare-keep-a").addEventListener("click", () => this.keep("a"));
    byId("compare-keep-b").addEventListener("click", () => this.keep("b"));
    byId("compare-swipe").addEventListener("click", () => void this.toggleSwipe());
    byId("compare-difference").addEventListener("click", () => void this.difference());
    const position = byId<HTMLInputElement>("swipe-position");
    position.addEventListener("input", () => this.swipe.position(Number(position.value) / 100));
  }

  private holds(serviceId: string): boolean {
    return this.slots.a?.service.id === serviceId || this.slots.b?.service.id === serviceId;
  }

  /** The layer on the map becomes A (or B); the service it replaces there is deleted unless still in use. */
  keep(which: Which): void {
    const status = this.layers.status;
    if (!status.service || !status.layer || !status.tiles) return showError("Show a layer on the map first, then keep it.", "Compare");
    clearError();
    const info = status.service.attributes?.layers?.[0];
    const previous = this.slots[which];
    this.slots[which] = {
      layer: status.layer,
      service: status.service,
      side: { tiles: status.tiles, options: { minzoom: info?.minzoom, maxzoom: info?.maxzoom, bounds: info?.bbox } },
    };
    if (previous && !this.holds(previous.service.id) && previous.service.id !== status.service.id) {
      deleteService(previous.service.id).catch(() => undefined);
    }
    this.render();
    if (this.swipe.active) void this.startSwipe();
    for (const listener of this.changed) listener();
  }

  private render(): void {
    for (const which of ["a", "b"] as const) byId(`compare-${which}`).textContent = this.slots[which]?.layer.title ?? "none yet";
    const both = this.slots.a !== null && this.slots.b !== null;
    byId<HTMLButtonElement>("compare-swipe").disabled = !both;
    byId<HTMLButtonElement>("compare-difference").disabled = !both;
  }

  private async toggleSwipe(): Promise<void> {
    if (this.swipe.active) this.stopSwipe();
    else await this.startSwipe();
  }

  private async startSwipe(): Promise<void> {
    const { a, b } = this.slots;
    if (!a || !b) return showError("Keep two layers, A and B, first.", "Compare");
    byId("swipe-row").hidden = false;
    byId("compare-swipe").setAttribute("aria-pressed", "true");
    byId("compare-swipe").textContent = "Stop swiping";
    await this.swipe.start(a.side, b.side, Number(byId<HTMLInputElement>("swipe-position").value) / 100);
  }

  private stopSwipe(): void {
    if (!this.swipe.active && byId("swipe-row").hidden) return;
    this.swipe.stop();
    byId("swipe-row").hidden = true;
    byId("compare-swipe").setAttribute("aria-pressed", "false");
    byId("compare-swipe").textContent = "Swipe A | B";
  }

  /** B − A computed on the server, shown as the layer on the map. */
  private async difference(): Promise<void> {
    const { a, b } = this.slots;
    if (!a || !b) return showError("Keep two layers, A and B, first.", "Compare");
    let layer: LayerGraph;
    try {
      layer = differenceGraph(a.layer, b.layer);
    } catch (error) {
      return showError(error, "Difference");
    }
    const button = byId<HTMLButtonElement>("compare-difference");
    button.disabled = true;
    try {
      await this.layers.display(layer, null);
    } finally {
      button.disabled = false;
    }
  }
}
