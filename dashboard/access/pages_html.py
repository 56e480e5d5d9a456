"""The few server-rendered pages of access control: login, refusal, user administration.

Plain HTML with the shipped Bootstrap CSS, every value escaped; they must work before any Dash page
can load (a person who is not logged in gets no Dash app at all).
"""

from __future__ import annotations

from html import escape

from dashboard.access.identity import Identity
from pipeline.auth.roles import USER_ROLES

HEAD = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
    "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    "<title>{title} · OVERWATCH-NG</title>"
    "<link rel='stylesheet' href='/assets/bootstrap.min.css'></head><body class='bg-light'>"
    "<nav class='navbar navbar-dark bg-dark mb-4'><div class='container-fluid'>"
    "<a class='navbar-brand' href='/runs'>OVERWATCH-NG</a></div></nav><main class='container'>"
)
TAIL = "</main></body></html>"


def _page(title: str, body: str) -> str:
    return HEAD.format(title=escape(title)) + body + TAIL


def _csrf_field(token: str) -> str:
    return f"<input type='hidden' name='csrf_token' value='{escape(token)}'>"


def login_page(
    csrf_token: str, next_path: str, message: str = "", kind: str = "danger", name: str = ""
) -> str:
    alert = f"<div class='alert alert-{kind}' role='alert' id='login-message'>{escape(message)}</div>"
    return _page(
        "Log in",
        "<div class='row justify-content-center'><div class='col-md-5 col-lg-4'>"
        "<h1 class='h3 mb-3'>Log in</h1>"
        + (alert if message else "")
        + "<form method='post' action='/login' id='login-form' class='card card-body'>"
        + _csrf_field(csrf_token)
        + f"<input type='hidden' name='next' value='{escape(next_path)}'>"
        "<label class='form-label' for='login-name'>User name</label>"
        f"<input class='form-control mb-3' id='login-name' name='username' autocomplete='username' "
        f"value='{escape(name)}' required autofocus>"
        "<label class='form-label' for='login-password'>Password</label>"
        "<input class='form-control mb-3' id='login-password' name='password' type='password' "
        "autocomplete='current-password' required>"
        "<button class='btn btn-primary' id='login-submit' type='submit'>Log in</button></form>"
        "<p class='text-muted small mt-3'>Accounts are managed by the site's admins "
        "(<code>python -m pipeline users</code>).</p></div></div>",
    )


def refusal_page(status: int, message: str, who: Identity) -> str:
    signed_in = (
        f"You are {escape(who.name)} ({escape(who.role.label)})."
        if who.is_authenticated
        else "You are not logged in."
    )
    return _page(
        "Not allowed",
        f"<h1 class='h3'>Not allowed (HTTP {status})</h1><p id='refusal-message'>{escape(message)}</p>"
        f"<p>{signed_in}</p><p><a href='/runs'>Run list</a> · "
        "<a href='/login'>Log in as someone else</a></p>",
    )


def admin_page(csrf_token: str, users: list, counters: dict[str, int], me: str, message: str = "") -> str:
    roles = "".join(f"<option value='{r.label}'>{r.label}</option>" for r in USER_ROLES)
    rows = []
    for record in users:
        name = escape(record.name)
        rows.append(
            f"<tr id='user-{name}'><td>{name}</td><td>{escape(record.role.label)}</td><td>"
            "<form method='post' class='d-inline-flex gap-1'>"
            + _csrf_field(csrf_token)
            + f"<input type='hidden' name='name' value='{name}'>"
            "<input type='hidden' name='action' value='role'>"
            f"<select class='form-select form-select-sm' name='role'>{roles}</select>"
            "<button class='btn btn-sm btn-outline-primary'>Set role</button></form> "
            + (
                ""
                if record.name == me
                else "<form method='post' class='d-inline'>"
                + _csrf_field(csrf_token)
                + f"<input type='hidden' name='name' value='{name}'><input type='hidden' name='action' "
                "value='remove'><button class='btn btn-sm btn-outline-danger'>Remove</button></form>"
            )
            + "</td></tr>"
        )
    counter_rows = "".join(f"<tr><td>{escape(k)}</td><td>{v:,}</td></tr>" for k, v in counters.items())
    note = f"<div class='alert alert-info' id='admin-message'>{escape(message)}</div>" if message else ""
    return _page(
        "Users",
        f"<h1 class='h3'>Users</h1>{note}<table class='table table-sm' id='users-table'>"
        "<thead><tr><th>Name</th><th>Role</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table><h2 class='h5 mt-4'>Add a user, or set a password</h2>"
        "<form method='post' class='row g-2' id='add-user'>"
        + _csrf_field(csrf_token)
        + "<input type='hidden' name='action' value='set'>"
        "<div class='col-auto'><input class='form-control' name='name' placeholder='name' required></div>"
        f"<div class='col-auto'><select class='form-select' name='role'>{roles}</select></div>"
        "<div class='col-auto'><input class='form-control' type='password' name='password' "
        "placeholder='password (8+ characters)' autocomplete='new-password' required></div>"
        "<div class='col-auto'><button class='btn btn-primary'>Save</button></div></form>"
        "<h2 class='h5 mt-4'>Access counters</h2><table class='table table-sm' id='access-counters'>"
        + counter_rows
        + "</table><p><a href='/runs'>Back to the run list</a></p>",
    )
