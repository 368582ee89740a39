// Types for @maplibre/maplibre-gl-compare 0.5.0 (the package ships none): what swipe.ts uses.
declare module "@maplibre/maplibre-gl-compare" {
  import type { Map } from "maplibre-gl";

  export default class Compare {
    constructor(a: Map, b: Map, container: string | HTMLElement, options?: { orientation?: "vertical" | "horizontal"; mousemove?: boolean });
    currentPosition: number;
    setSlider(x: number): void;
    on(type: "slideend", listener: (event: { currentPosition: number }) => void): this;
    remove(): void;
  }
}
