"""The issuer's two plain HTML pages: enter a device's user code, and approve a browser client's login.

No script, no cookie, no external resource: a form that posts a name and a password back to the
same page. The headers keep the pages out of frames (no clickjacking) and out of caches.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } label { display: block; margin: .8rem 0 .2rem; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
button { margin: 1.2rem .5rem 0 0; padding: .5rem 1.2rem; font-size: 1rem; }
.error { color: #a00; } .note { color: #555; font-size: .9rem; }
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _error(message: str | None) -> str:
    return f"<p class=error role=alert>{escape(message)}</p>" if message else ""


def _credentials(name: str = "") -> str:
    return (
        f"<label for=name>User name</label><input id=name name=name type=text autocomplete=username required value='{escape(name, True)}'>"
        "<label for=password>Password</label><input id=password name=password type=password autocomplete=current-password required>"
    )


def device_page(title: str, action: str, user_code: str = "", name: str = "", error: str | None = None, status: int = 200) -> HTMLResponse:
    body = (
        f"<p>A program asks to work on {escape(title)} as you. Enter the code it shows, log in, and approve.</p>"
        f"{_error(error)}<form method=post action='{escape(action, True)}'>"
        f"<label for=user_code>Code</label><input id=user_code name=user_code type=text required autocomplete=off "
        f"value='{escape(user_code, True)}' placeholder='BCDF-GHJK'>{_credentials(name)}"
        "<button name=decision value=approve type=submit>Approve</button>"
        "<button name=decision value=deny type=submit formnovalidate>Deny</button></form>"
        "<p class=note>Only approve a code you asked for yourself, just now.</p>"
    )
    return page(f"Log in to {title}", body, status)


def authorize_page(title: str, action: str, client: str, redirect_host: str, params: dict[str, str],
                   name: str = "", error: str | None = None, status: int = 200) -> HTMLResponse:
    hidden = "".join(f"<input type=hidden name='{escape(k, True)}' value='{escape(v, True)}'>" for k, v in params.items())
    body = (
        f"<p>The application <b>{escape(client)}</b> at <b>{escape(redirect_host)}</b> asks to work on {escape(title)} as you.</p>"
        f"{_error(error)}<form method=post action='{escape(action, True)}'>{hidden}{_credentials(name)}"
        "<button name=decision value=approve type=submit>Log in and approve</button>"
        "<button name=decision value=deny type=submit formnovalidate>Deny</button></form>"
    )
    return page(f"Log in to {title}", body, status)


def done_page(title: str, approved: bool) -> HTMLResponse:
    if approved:
        return page("Approved", f"<p>You are logged in to {escape(title)}. You can close this page and go back to your program.</p>")
    return page("Denied", "<p>The request was denied; the program gets no access. You can close this page.</p>")


def nothing_to_approve(title: str) -> HTMLResponse:
    return page("Nothing to approve", f"<p>{escape(title)} has no accounts (laptop mode): it approves every login by itself. Go back to your program.</p>")


def error_page(message: str, status: int = 400) -> HTMLResponse:
    return page("Cannot log in", _error(message), status)
