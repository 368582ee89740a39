// Who is using the page: laptop mode lets everyone in as the local user; with accounts, a "Log in"
// button starts the authorization code flow (auth.ts). The quota left is shown where there is one.
import { ApiError, me, useToken, type Me } from "./api";
import { finishLogIn, logIn, logOut, storedSession } from "./auth";
import { byId, formatBytes, showError } from "./ui";

function quota(user: Me): string {
  const parts: string[] = [];
  const usage = user.usage;
  const unit = !usage?.budget_unit || usage.budget_unit === "cpu-hours" ? "CPU hours" : usage.budget_unit;
  if (typeof user.budget === "number") parts.push(`${user.budget.toFixed(2)} ${unit} left this month`);
  const storage = user.storage;
  if (storage && typeof storage.free === "number") parts.push(`${formatBytes(storage.free)} of ${formatBytes(storage.quota ?? 0)} storage free`);
  return parts.join(", ");
}

function showUser(user: Me, loggedIn: boolean): void {
  const box = byId("account");
  box.replaceChildren();
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = `${user.name ?? user.user_id}`;
  box.append(who);
  const left = quota(user);
  const detail = document.createElement("span");
  detail.className = "note";
  detail.textContent = left || (loggedIn ? "no quota" : "laptop mode: no login needed");
  box.append(detail);
  if (loggedIn) {
    const out = document.createElement("button");
    out.type = "button";
    out.className = "link";
    out.textContent = "Log out";
    out.addEventListener("click", () => {
      logOut();
      window.location.reload();
    });
    box.append(out);
  }
}

function showLogIn(reason?: string): void {
  const box = byId("account");
  box.replaceChildren();
  const button = document.createElement("button");
  button.type = "button";
  button.id = "login";
  button.textContent = "Log in";
  button.addEventListener("click", () => logIn().catch((error) => showError(error, "Log in")));
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = reason ?? "This server has accounts: log in to show layers.";
  box.append(button, note);
}

/** Find out who the user is (finishing a login that just came back); true when the page may call the API. */
export async function startSession(): Promise<boolean> {
  try {
    const session = (await finishLogIn()) ?? storedSession();
    if (session) useToken(session.provider, session.token);
    const user = await me();
    showUser(user, session !== null);
    return true;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      logOut();
      useToken(null, null);
      showLogIn(error.status === 403 ? "Your login has ended: log in again." : undefined);
      return false;
    }
    showLogIn();
    showError(error, "Log in");
    return false;
  }
}
