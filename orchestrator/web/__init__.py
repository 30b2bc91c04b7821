"""`plantsweep serve`: a read-only management web view over the central store.

    app = create_app(open_store())             # a Starlette app; uvicorn serves it
    uvicorn.run(app, host="127.0.0.1", port=8080)

Company -> site -> area/line -> host -> finding, open checkpoint admissions, the audit trail
with its verify status and inspection records with their signatures, for the store's users
(login always required; roles as in orchestrator/users). Nothing here writes to the store but
the login and logout of a web session (a `sessions` row and its audit entries).

app.py: the application and its routes; auth.py: login, sessions, CSRF, permissions;
pages.py: the read queries (paged, on indexed columns); views.py: the pages; charts.py: inline
SVG charts; cli.py: the `serve` command.
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: `plantsweep` builds its parser from web/cli.py without importing Starlette.
    if name == "create_app":
        from orchestrator.web.app import create_app

        return create_app
    raise AttributeError(name)
