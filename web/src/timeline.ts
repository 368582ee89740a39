// The scenes found on a timeline: one mark per scene along the searched dates, as high as its cloud cover
// (0 % at the bottom; the top is the cloudiest scene's cover rounded up to tens, so that a search for scenes
// under 20 % spreads them over the height), filled when clear. Hover or focus shows its date and cloud cover; a click, Enter or
// Space picks it as the list does. Keyboard: one mark is in the tab order, the arrow keys move between them.
// Plain SVG made here: a chart library would be more code than the chart.
import type { Item } from "./api";

export const CLEAR_CLOUD = 10; // % cloud cover at most: a "clear" scene (the shortcut's and the marks' fill)

const SVG = "http://www.w3.org/2000/svg";
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const HEIGHT = 104;
const MARGIN = { left: 34, right: 10, top: 10, bottom: 22 };

const day = (item: Item) => (item.properties.datetime ?? "").slice(0, 10);
const cloudOf = (item: Item) => {
  const cloud = item.properties["eo:cloud_cover"];
  return typeof cloud === "number" && Number.isFinite(cloud) ? cloud : null;
};

/** What a scene is, in words: its date and cloud cover. */
export function describe(item: Item): string {
  const cloud = cloudOf(item);
  return `${day(item)}, ${cloud === null ? "cloud cover unknown" : `${cloud.toFixed(0)} % cloud`}`;
}

/** The newest day's scene with at most CLEAR_CLOUD % cloud (the least cloudy of that day), or null. */
export function latestClear(items: Item[]): Item | null {
  const clear = items.filter((item) => (cloudOf(item) ?? Infinity) <= CLEAR_CLOUD);
  clear.sort((a, b) => day(b).localeCompare(day(a)) || cloudOf(a)! - cloudOf(b)!);
  return clear[0] ?? null;
}

function element<K extends keyof SVGElementTagNameMap>(name: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

export class Timeline {
  private items: Item[] = [];
  private period: [string, string] = ["", ""];
  private selected: string | null = null;
  private marks: SVGGElement[] = [];
  private width = 0;
  private readonly tip: HTMLElement;

  constructor(private readonly container: HTMLElement, private readonly onPick: (item: Item) => void) {
    this.tip = document.createElement("div");
    this.tip.className = "timeline-tip";
    this.tip.setAttribute("role", "tooltip");
    this.tip.id = `${container.id}-tip`;
    this.tip.hidden = true;
    // Drawn again when the panel's width changes (a phone turned, the window resized).
    new ResizeObserver(() => this.container.clientWidth !== this.width && this.render()).observe(container);
  }

  /** The scenes of a search (oldest first) over its dates, from and to (inclusive). */
  show(items: Item[], period: [string, string]): void {
    this.items = items;
    this.period = period;
    this.selected = null;
    this.render();
  }

  /** Mark the picked scene (the list picked it, or this timeline did). */
  select(id: string | null): void {
    this.selected = id;
    let current = -1;
    this.marks.forEach((mark, i) => {
      const picked = mark.dataset.id === id;
      mark.setAttribute("aria-pressed", String(picked));
      mark.classList.toggle("picked", picked);
      if (picked) current = i;
    });
    if (current >= 0) this.rove(current, false);
  }

  private render(): void {
    this.container.hidden = this.items.length === 0;
    this.width = this.container.clientWidth;
    this.marks = [];
    if (this.items.length === 0) return this.container.replaceChildren();
    const width = Math.max(this.width, 200);
    const plot = { x: MARGIN.left, y: MARGIN.top, w: width - MARGIN.left - MARGIN.right, h: HEIGHT - MARGIN.top - MARGIN.bottom };
    const start = Date.parse(`${this.period[0] || day(this.items[0])}T00:00:00Z`);
    const end = Date.parse(`${this.period[1] || day(this.items[this.items.length - 1])}T23:59:59Z`);
    const x = (time: number) => plot.x + Math.min(1, Math.max(0, (time - start) / Math.max(end - start, 1))) * plot.w;
    const top = Math.max(CLEAR_CLOUD * 2, Math.ceil(Math.max(...this.items.map((item) => cloudOf(item) ?? 0)) / 10) * 10);
    const y = (cloud: number) => plot.y + plot.h * (1 - Math.min(cloud, top) / top);
    const svg = element("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "group",
      "aria-label": `The scenes on a timeline: cloud cover (height, 0 to ${top} %) by date. Arrow keys move, Enter picks.` });

    // The cloud axis: 0, the clear line, 100 %.
    for (const [cloud, label, kind] of [[0, "0 %", "axis"], [CLEAR_CLOUD, "clear", "clear"], [top, `${top} %`, "grid"]] as const) {
      svg.append(element("line", { x1: plot.x, x2: plot.x + plot.w, y1: y(cloud), y2: y(cloud), class: `rule ${kind}` }));
      const text = element("text", { x: plot.x - 4, y: y(cloud) + (kind === "clear" ? -1 : 3), class: `label ${kind}`, "text-anchor": "end" });
      text.textContent = label;
      if (kind !== "clear" || plot.h * CLEAR_CLOUD / top > 10) svg.append(text);
    }
    // The date axis: the first and last day, and the first of each month between.
    const label = (time: number) => `${new Date(time).getUTCDate()} ${MONTHS[new Date(time).getUTCMonth()]}`;
    const ticks: [number, string][] = [[start, label(start)]];
    const month = new Date(start);
    month.setUTCDate(1);
    for (month.setUTCMonth(month.getUTCMonth() + 1); month.getTime() < end; month.setUTCMonth(month.getUTCMonth() + 1)) {
      ticks.push([month.getTime(), label(month.getTime())]);
    }
    ticks.push([end, label(end)]);
    let lastRight = -Infinity;
    ticks.forEach(([time, name], i) => {
      const at = x(time);
      const anchor = i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle";
      const left = anchor === "start" ? at : anchor === "end" ? at - 36 : at - 18;
      if (left < lastRight + 4 && i !== ticks.length - 1) return; // no labels over each other
      svg.append(element("line", { x1: at, x2: at, y1: plot.y + plot.h, y2: plot.y + plot.h + 4, class: "rule axis" }));
      const text = element("text", { x: at, y: HEIGHT - 6, class: "label", "text-anchor": anchor });
      text.textContent = name;
      svg.append(text);
      lastRight = left + 36;
    });

    // The marks: scenes of the same day side by side.
    const spacing = Math.max(4, Math.min(12, plot.w / Math.max(this.items.length, 1)));
    const sameDay = new Map<string, number>();
    for (const item of this.items) sameDay.set(day(item), (sameDay.get(day(item)) ?? 0) + 1);
    const seen = new Map<string, number>();
    this.items.forEach((item, index) => {
      const n = sameDay.get(day(item))!;
      const k = seen.get(day(item)) ?? 0;
      seen.set(day(item), k + 1);
      const cx = x(Date.parse(item.properties.datetime ?? "")) + (k - (n - 1) / 2) * Math.min(spacing, 6);
      const cloud = cloudOf(item);
      const cy = y(cloud ?? 50);
      const mark = element("g", { class: `mark${cloud !== null && cloud <= CLEAR_CLOUD ? " clear" : ""}${cloud === null ? " unknown" : ""}`,
        role: "button", tabindex: -1, "aria-label": describe(item), "aria-pressed": "false", "data-id": item.id, "data-date": day(item) });
      mark.append(
        element("rect", { x: cx - spacing / 2, y: plot.y - 4, width: spacing, height: plot.h + 8, class: "hit" }),
        element("line", { x1: cx, x2: cx, y1: plot.y + plot.h, y2: cy, class: "stem" }),
        element("circle", { cx, cy, r: 4, class: "dot" }),
      );
      mark.addEventListener("click", () => this.pick(index));
      mark.addEventListener("keydown", (event) => this.key(event, index));
      mark.addEventListener("pointerenter", () => this.showTip(index));
      mark.addEventListener("pointerleave", () => document.activeElement !== mark && this.hideTip());
      mark.addEventListener("focus", () => this.showTip(index));
      mark.addEventListener("blur", () => this.hideTip());
      svg.append(mark);
      this.marks.push(mark);
    });
    this.container.replaceChildren(svg, this.tip);
    const picked = this.marks.findIndex((mark) => mark.dataset.id === this.selected);
    this.select(this.selected);
    if (picked < 0) this.rove(0, false);
  }

  private pick(index: number): void {
    this.rove(index, true);
    this.onPick(this.items[index]);
  }

  /** One mark in the tab order (the picked or last focused), focused if ``focus``. */
  private rove(index: number, focus: boolean): void {
    this.marks.forEach((mark, i) => mark.setAttribute("tabindex", i === index ? "0" : "-1"));
    if (focus) this.marks[index]?.focus();
  }

  private key(event: KeyboardEvent, index: number): void {
    const last = this.marks.length - 1;
    const moves: Record<string, number> = { ArrowLeft: index - 1, ArrowDown: index - 1, ArrowRight: index + 1, ArrowUp: index + 1, Home: 0, End: last };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.pick(index);
    } else if (event.key in moves) {
      event.preventDefault();
      this.rove(Math.max(0, Math.min(last, moves[event.key])), true);
    }
  }

  private showTip(index: number): void {
    const mark = this.marks[index];
    const dot = mark.querySelector("circle")!;
    this.tip.textContent = describe(this.items[index]);
    this.tip.hidden = false;
    const left = Number(dot.getAttribute("cx"));
    // Above the mark, kept inside the panel.
    this.tip.style.left = `${Math.max(0, Math.min(left - this.tip.offsetWidth / 2, this.width - this.tip.offsetWidth))}px`;
    this.tip.style.top = `${Math.max(0, Number(dot.getAttribute("cy")) - 34)}px`;
    mark.setAttribute("aria-describedby", this.tip.id);
  }

  private hideTip(): void {
    this.tip.hidden = true;
  }
}
