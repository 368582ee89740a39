// Small helpers for the page: elements by id, the status line (loading states) and errors in words.
import { ApiError } from "./api";

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}`);
  return element as T;
}

const busy = new Set<string>();

/** Say that something is under way ("Searching…") until ``done`` is called; several at once are listed. */
export function working(what: string): () => void {
  busy.add(what);
  render();
  return () => {
    busy.delete(what);
    render();
  };
}

function render(): void {
  const status = byId("status");
  status.textContent = [...busy].join(" · ");
  status.classList.toggle("busy", busy.size > 0);
}

/** An error as a person reads it: an openEO error's message (and code), never a stack. */
export function showError(error: unknown, context?: string): void {
  const box = byId("error");
  let message = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.code && !error.code.startsWith("HTTP")) message += ` (${error.code})`;
  box.textContent = context ? `${context}: ${message}` : message;
  box.hidden = false;
}

export function clearError(): void {
  const box = byId("error");
  box.textContent = "";
  box.hidden = true;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}
