// The jobs panel: the person's batch jobs (GET /jobs) with title, status, progress and creation
// time; per job its logs and, once finished, its result files (signed links, no token needed).
// Refreshed by its button, and every few seconds while a job is queued or running.
import { ApiError, jobLogs, jobResults, jobs, type Job, type LogEntry, type ResultAsset } from "./api";
import { byId, formatBytes, showError } from "./ui";

const ACTIVE = new Set(["queued", "running"]);
const REFRESH_MS = 2000;

/** A result file as a link that downloads it (the signed href answers with the file as an attachment). */
export function resultLink([name, asset]: [string, ResultAsset]): HTMLLIElement {
  const entry = document.createElement("li");
  const link = document.createElement("a");
  link.href = asset.href;
  link.download = name;
  link.textContent = asset.title ?? name;
  entry.append(link);
  if (typeof asset["file:size"] === "number") entry.append(` (${formatBytes(asset["file:size"])})`);
  return entry;
}

function logLine(entry: LogEntry): HTMLLIElement {
  const line = document.createElement("li");
  line.className = `log log-${entry.level}`;
  const when = document.createElement("time");
  when.textContent = entry.time ? entry.time.slice(11, 19) : "";
  if (entry.time) when.dateTime = entry.time;
  const level = document.createElement("span");
  level.className = "level";
  level.textContent = entry.level;
  line.append(when, " ", level, " ", entry.code ? `${entry.code}: ${entry.message}` : entry.message);
  return line;
}

/** One job in the list; kept across refreshes so that open logs and results stay open. */
class JobEntry {
  readonly element = document.createElement("li");
  private readonly title = document.createElement("span");
  private readonly status = document.createElement("span");
  private readonly progress = document.createElement("progress");
  private readonly created = document.createElement("span");
  private readonly logs = document.createElement("details");
  private readonly results = document.createElement("details");
  job: Job;

  constructor(job: Job) {
    this.job = job;
    this.element.className = "job";
    this.element.dataset.id = job.id;
    this.title.className = "job-title";
    this.status.className = "job-status";
    this.progress.max = 100;
    this.created.className = "note";
    const head = document.createElement("div");
    head.className = "job-head";
    head.append(this.title, this.status);
    this.logs.className = "job-logs";
    this.logs.append(this.summary("Logs"), Object.assign(document.createElement("ol"), { className: "logs" }));
    this.logs.addEventListener("toggle", () => this.logs.open && void this.loadLogs());
    this.results.className = "job-results";
    this.results.append(this.summary("Results"), Object.assign(document.createElement("ul"), { className: "links" }));
    this.results.addEventListener("toggle", () => this.results.open && void this.loadResults());
    this.element.append(head, this.progress, this.created, this.logs, this.results);
    this.update(job);
  }

  private summary(text: string): HTMLElement {
    const summary = document.createElement("summary");
    summary.textContent = text;
    return summary;
  }

  update(job: Job): void {
    const changed = job.status !== this.job.status;
    this.job = job;
    this.title.textContent = job.title || job.id;
    this.status.textContent = job.status;
    this.status.dataset.status = job.status;
    const progress = job.status === "finished" ? 100 : job.progress ?? 0;
    this.progress.value = progress;
    this.progress.setAttribute("aria-label", `${job.title || job.id}: ${job.status}, ${progress.toFixed(0)} %`);
    this.created.textContent = `created ${job.created.slice(0, 16).replace("T", " ")} UTC · ${progress.toFixed(0)} %`;
    this.results.hidden = job.status !== "finished";
    if (this.logs.open && (changed || ACTIVE.has(job.status))) void this.loadLogs();
    if (this.results.open && changed && job.status === "finished") void this.loadResults();
  }

  private async loadLogs(): Promise<void> {
    const list = this.logs.querySelector("ol")!;
    try {
      const entries = await jobLogs(this.job.id);
      list.replaceChildren(...(entries.length ? entries.map(logLine) : [Object.assign(document.createElement("li"), { textContent: "No log entries yet." })]));
    } catch (error) {
      showError(error, `Logs of ${this.job.title || this.job.id}`);
    }
  }

  private async loadResults(): Promise<void> {
    const list = this.results.querySelector("ul")!;
    try {
      list.replaceChildren(...(await jobResults(this.job.id)).map(resultLink));
    } catch (error) {
      showError(error, `Results of ${this.job.title || this.job.id}`);
    }
  }
}

export class JobsPanel {
  jobs: Job[] = []; // what the list shows (tests read it)
  private readonly entries = new Map<string, JobEntry>();
  private timer: number | undefined;
  private running: Promise<void> | null = null;

  constructor() {
    byId("jobs-refresh").addEventListener("click", () => void this.refresh());
  }

  /** Before a login (accounts mode): nothing to list yet. */
  needsLogin(): void {
    byId("jobs-note").textContent = "Log in to see your batch jobs.";
  }

  /** Read the list again; while a job is queued or running, again in a moment. */
  refresh(): Promise<void> {
    this.running ??= this.load().finally(() => (this.running = null));
    return this.running;
  }

  private async load(): Promise<void> {
    window.clearTimeout(this.timer);
    const note = byId("jobs-note");
    try {
      this.jobs = await jobs();
    } catch (error) {
      this.jobs = [];
      this.show();
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        this.needsLogin();
      } else {
        note.textContent = "";
        showError(error, "Jobs");
      }
      return;
    }
    this.show();
    const active = this.jobs.some((job) => ACTIVE.has(job.status));
    note.textContent = this.jobs.length === 0 ? "No batch jobs yet: a large download makes one." :
      `${this.jobs.length} job${this.jobs.length === 1 ? "" : "s"}, newest first${active ? "; refreshing while one runs" : ""}.`;
    if (active) this.timer = window.setTimeout(() => void this.refresh(), REFRESH_MS);
  }

  private show(): void {
    const seen = new Set<string>();
    const elements = this.jobs.map((job) => {
      seen.add(job.id);
      let entry = this.entries.get(job.id);
      if (entry) entry.update(job);
      else this.entries.set(job.id, (entry = new JobEntry(job)));
      return entry.element;
    });
    for (const id of [...this.entries.keys()]) if (!seen.has(id)) this.entries.delete(id);
    const list = byId("jobs-list");
    // Moving an element would take the focus from it (a person reading a job's logs): only when the order changed.
    if (elements.length !== list.children.length || elements.some((element, i) => list.children[i] !== element)) list.replaceChildren(...elements);
  }
}
