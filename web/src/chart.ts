// The chart panel: the current layer's mean over the searched area, date by date over the search's
// period, with a band of one standard deviation either side; computed by the server (chartGraph in
// outputs.ts through POST /result) and drawn with uPlot. Dates without data are gaps, not zeros.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { resultJson, type Item } from "./api";
import type { LayerPanel } from "./layers";
import { chartGraph, hasSceneClassification, SCL_CLOUDS, STATISTICS } from "./outputs";
import type { SearchPanel } from "./search";
import { byId, clearError, showError, working } from "./ui";

/** What the chart shows: one entry per date; null where the area had no valid pixel that day. */
export interface ChartSeries {
  title: string;
  dates: string[]; // YYYY-MM-DD
  mean: (number | null)[];
  sd: (number | null)[];
  graph: unknown; // the process graph it was computed with
}

/** The answer of save_result(format="JSON") for a vector cube: dimensions, their labels, nested values. */
interface CubeJson {
  dims: string[];
  coords: Record<string, unknown[]>;
  data: unknown;
}

/** The series of a statistic along ``t`` for the one geometry, whatever the order of the dimensions. */
export function seriesOf(answer: CubeJson, statistic: string): { dates: string[]; values: (number | null)[] } {
  const dates = (answer.coords.t ?? []).map((label) => String(label).slice(0, 10));
  const at = (indices: Record<string, number>): number | null => {
    let value: unknown = answer.data;
    for (const dim of answer.dims) value = (value as unknown[])[indices[dim] ?? 0];
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  };
  const s = (answer.coords.statistic ?? []).indexOf(statistic);
  if (s < 0) throw new Error(`The server's answer has no ${statistic}.`);
  return { dates, values: dates.map((_, t) => at({ statistic: s, geometry: 0, t })) };
}

const seconds = (date: string) => Date.parse(`${date}T00:00:00Z`) / 1000;
const fixed = (value: number | null, digits = 3) => (value === null ? "no data" : value.toFixed(digits));
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** An axis label: "3 Jun" (UTC days; the year is in the note above). */
const dayLabel = (ts: number) => {
  const date = new Date(ts * 1000);
  return `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]}`;
};
/** A legend value: the hovered date's, a dash while the pointer is elsewhere. */
const legendValue = (_: uPlot, value: number | null, __: number, index: number | null) => (index === null ? "–" : fixed(value));

/**
 * The cloud cover limit of the search whose scenes are listed: the search panel reads it from its
 * form when it searches; the chart takes the same limit, recorded when the form is sent and kept
 * once that search's scenes have arrived (a failed search leaves the previous limit).
 */
class SearchCloudLimit {
  private limit: number | null = null;
  private pending: { before: Item[]; limit: number } | null = null;

  constructor(private readonly search: SearchPanel) {
    byId<HTMLFormElement>("search-form").addEventListener("submit", () => {
      this.pending = { before: this.search.state.items, limit: Number(byId<HTMLInputElement>("max-cloud").value) };
    });
  }

  current(): number | null {
    if (this.pending && this.search.state.items !== this.pending.before) {
      this.limit = this.pending.limit;
      this.pending = null;
    }
    return this.limit;
  }
}

export class ChartPanel {
  series: ChartSeries | null = null; // for tests and for people debugging: what is drawn
  private plot: uPlot | null = null;
  private readonly cloud: SearchCloudLimit;

  constructor(private readonly layers: LayerPanel, private readonly search: SearchPanel) {
    this.cloud = new SearchCloudLimit(search);
    byId<HTMLFormElement>("chart-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.draw();
    });
    new ResizeObserver(() => this.fit()).observe(byId("chart-plot"));
    byId("chart-clouds-label").title = `Scene classification (SCL) classes ${SCL_CLOUDS.join(", ")}: cloud shadow, clouds, thin cirrus`;
  }

  /** Compute the layer's statistics over the area and draw them. */
  async draw(): Promise<void> {
    const request = this.layers.status.request;
    if (!request) return this.say("Show a layer of one band (NDVI or band maths) on the map first; the chart is of that layer.");
    let built;
    try {
      const maskClouds = byId<HTMLInputElement>("chart-clouds").checked;
      built = chartGraph(request, this.search.state, { maxCloud: this.cloud.current(), maskClouds });
    } catch (error) {
      return this.say((error as Error).message);
    }
    clearError();
    const button = byId<HTMLButtonElement>("chart-button");
    button.disabled = true;
    const [from, to] = this.search.state.period;
    const masked = byId<HTMLInputElement>("chart-clouds").checked && hasSceneClassification(request.collection);
    const title = `${built.layer.title.replace(/, [^,]*$/, "")}${masked ? " without cloudy pixels" : ""}, mean over the area, ${from} to ${to}`;
    const done = working("Computing the chart…");
    byId("chart-note").textContent = "Computing the mean over the area for each date…";
    try {
      const answer = await resultJson<CubeJson>(built.graph);
      const [mean, sd] = STATISTICS.map((statistic) => seriesOf(answer, statistic));
      this.series = { title, dates: mean.dates, mean: mean.values, sd: sd.values, graph: built.graph };
      this.render(this.series);
    } catch (error) {
      byId("chart-note").textContent = "";
      showError(error, "Chart");
    } finally {
      button.disabled = false;
      done();
    }
  }

  private say(words: string): void {
    byId("chart-note").textContent = words;
  }

  private render(series: ChartSeries): void {
    const valid = series.mean.filter((v) => v !== null).length;
    const gaps = series.dates.length - valid;
    byId("chart-note").textContent = series.dates.length === 0 ? "No scene in these dates and this area." :
      `${series.title}: ${series.dates.length} date${series.dates.length === 1 ? "" : "s"}` +
      (gaps ? `, ${gaps} without data (gaps in the line)` : "") + ". The band is ±1 standard deviation.";
    const x = series.dates.map(seconds);
    const upper = series.mean.map((m, i) => (m === null || series.sd[i] === null ? null : m + series.sd[i]!));
    const lower = series.mean.map((m, i) => (m === null || series.sd[i] === null ? null : m - series.sd[i]!));
    const box = byId("chart-plot");
    box.setAttribute("aria-label", `Chart: ${byId("chart-note").textContent} The values are in the table below.`);
    this.plot?.destroy();
    this.plot = new uPlot({
      width: Math.max(200, box.clientWidth),
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // dates are UTC days, wherever the reader is
      series: [
        { label: "Date", value: (_, v, __, index) => (index === null || v === null ? "–" : new Date(v * 1000).toISOString().slice(0, 10)) },
        { label: "Mean", stroke: "#1f5f99", width: 2, points: { show: true, size: 6 }, spanGaps: false, value: legendValue },
        { label: "+1 sd", stroke: "rgba(31,95,153,0.35)", width: 1, points: { show: false }, spanGaps: false, value: legendValue },
        { label: "−1 sd", stroke: "rgba(31,95,153,0.35)", width: 1, points: { show: false }, spanGaps: false, value: legendValue },
      ],
      bands: [{ series: [2, 3], fill: "rgba(31,95,153,0.15)" }],
      axes: [{ values: (_, splits) => splits.map(dayLabel) }, { size: 44 }],
      cursor: { drag: { x: false, y: false } },
    }, [x, series.mean, upper, lower] as uPlot.AlignedData, box);
    this.table(series);
  }

  /** The values as a table (what the chart says, for screen readers and for copying). */
  private table(series: ChartSeries): void {
    const rows = series.dates.map((date, i) => {
      const row = document.createElement("tr");
      for (const text of [date, fixed(series.mean[i], 4), fixed(series.sd[i], 4)]) {
        const cell = document.createElement(row.children.length === 0 ? "th" : "td");
        if (row.children.length === 0) cell.setAttribute("scope", "row");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    byId("chart-rows").replaceChildren(...rows);
    byId("chart-values").hidden = rows.length === 0;
  }

  private fit(): void {
    const box = byId("chart-plot");
    if (this.plot && box.clientWidth > 0 && Math.abs(this.plot.width - box.clientWidth) > 2) {
      this.plot.setSize({ width: Math.max(200, box.clientWidth), height: 220 });
    }
  }
}
