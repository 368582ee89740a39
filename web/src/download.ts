// The download panel: the current layer over the searched area as a GeoTIFF (downloadGraph in
// outputs.ts). A small one comes straight from POST /result and is offered as a file; a large one
// (more values than ``syncLimit``: pixels × dates × bands, estimated) becomes a batch job, whose
// progress is shown until its result links can be offered.
import { ApiError, createJob, job as describeJob, jobResults, resultFile, searchItems, startJob, type Job } from "./api";
import type { ProcessGraph } from "./formula";
import type { LayerRequest } from "./graphs";
import { resultLink, type JobsPanel } from "./jobs";
import type { LayerPanel } from "./layers";
import { areaOf, bandsRead, downloadGraph, pixelsOf, resolutionOf } from "./outputs";
import type { SearchPanel } from "./search";
import { byId, clearError, showError, working } from "./ui";

/** Values (pixels × dates × bands) up to which a download is synchronous: a 40 MB float32 GeoTIFF. */
export const SYNC_LIMIT = 10_000_000;
const POLL_MS = 1500;

export interface Estimate {
  pixels: number;
  dates: number;
  bands: number;
  values: number;
}

/** A file name from a layer's title: "NDVI, 2021-07-21" -> "NDVI_2021-07-21.tif". */
export function fileName(title: string): string {
  return `${title.replace(/[^A-Za-z0-9.-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 80) || "layer"}.tif`;
}

export class DownloadPanel {
  /** A page setting: the largest download made synchronously (tests lower it to see a batch job). */
  syncLimit = SYNC_LIMIT;
  /** The batch job of the last large download (tests and people debugging read it). */
  job: Job | null = null;
  estimate: Estimate | null = null;
  private polling = 0; // which poll loop is current: a new download stops the older one's updates

  constructor(private readonly layers: LayerPanel, private readonly search: SearchPanel, private readonly jobs: JobsPanel) {
    byId<HTMLFormElement>("download-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.download();
    });
  }

  async download(): Promise<void> {
    const request = this.layers.status.request;
    if (!request) return this.say("Show a layer on the map first; the download is that layer.");
    let built;
    try {
      built = downloadGraph(request, this.search.state);
    } catch (error) {
      return this.say((error as Error).message);
    }
    clearError();
    const name = fileName(built.layer.title);
    const button = byId<HTMLButtonElement>("download-button");
    button.disabled = true;
    let done = working("Estimating the download's size…");
    try {
      const estimate = (this.estimate = await this.estimateOf(request, built.graph));
      const size = `${estimate.pixels.toLocaleString("en")} pixels × ${estimate.dates} date${estimate.dates === 1 ? "" : "s"} × ${estimate.bands} band${estimate.bands === 1 ? "" : "s"}`;
      done();
      if (estimate.values <= this.syncLimit) {
        this.say(`About ${size}: small enough to download now.`);
        done = working(`Computing ${name}…`);
        try {
          await this.direct(built.graph, name);
          this.say(`Downloaded ${name} (about ${size}).`);
          return;
        } catch (error) {
          // The server counts what it reads (bands in, not out) and may refuse what the estimate let through.
          if (!(error instanceof ApiError && error.code === "PayloadTooLarge")) throw error;
          this.say(`The server finds it too large to compute at once (${error.message}); a batch job makes it instead.`);
        }
      } else {
        this.say(`About ${size}: more than ${this.syncLimit.toLocaleString("en")} values, so a batch job makes it.`);
      }
      done();
      done = working("Starting a batch job…");
      const id = await createJob(`Download: ${built.layer.title}`, built.graph);
      await startJob(id);
      void this.follow(id);
    } catch (error) {
      showError(error, "Download");
    } finally {
      button.disabled = false;
      done();
    }
  }

  /** Pixels of the area at the finest band's resolution × the days the layer covers there × the bands it writes. */
  private async estimateOf(request: LayerRequest, graph: ProcessGraph): Promise<Estimate> {
    const area = areaOf(this.search.state);
    const bandsIn = bandsRead(graph, request.collection);
    const bands = request.kind === "truecolor" ? bandsIn.length : 1; // band maths writes one band
    // The layer shows every scene of its dates (no cloud limit): count their days as the archive has them.
    const items = await searchItems({ collection: request.collection.id, bbox: area.bbox, from: request.dates[0], to: request.dates[1], maxCloud: null });
    const days = new Set(items.map((item) => (item.properties.datetime ?? "").slice(0, 10))).size;
    const pixels = pixelsOf(area.bbox, resolutionOf(request.collection, bandsIn));
    return { pixels, dates: days, bands, values: pixels * days * bands };
  }

  /** The GeoTIFF from POST /result, handed to the web browser as a file to save. */
  private async direct(graph: ProcessGraph, name: string): Promise<void> {
    const { blob } = await resultFile(graph);
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  /** The started job's status and progress, shown until it ends; then its result links. */
  private async follow(id: string): Promise<void> {
    const loop = ++this.polling;
    byId("download-job").hidden = false;
    byId("download-links").replaceChildren();
    void this.jobs.refresh();
    try {
      for (;;) {
        const job = await describeJob(id);
        if (loop !== this.polling) return; // a newer download is shown now
        this.job = job;
        this.showJob(job);
        if (job.status === "finished") {
          byId("download-links").replaceChildren(...(await jobResults(id)).map(resultLink));
          break;
        }
        if (job.status === "error" || job.status === "canceled") {
          throw new Error(`The batch job ${job.status === "error" ? "failed" : "was canceled"}: its logs (Jobs, below) say why.`);
        }
        await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
      }
    } catch (error) {
      showError(error, "Download");
    } finally {
      void this.jobs.refresh();
    }
  }

  private showJob(job: Job): void {
    const progress = job.status === "finished" ? 100 : job.progress ?? 0;
    const bar = byId<HTMLProgressElement>("download-progress");
    bar.value = progress;
    byId("download-status").textContent = `Batch job “${job.title ?? job.id}”: ${job.status}, ${progress.toFixed(0)} %` +
      (job.status === "finished" ? ". Its files:" : "");
  }

  private say(words: string): void {
    byId("download-note").textContent = words;
  }
}
