"""Security headers on every response: the page and its assets load only from this origin, no
other site may frame them, browsers do not guess content types, and no Referer leaves.

A response that sets its own Content-Security-Policy keeps it: the offline docs pages
(api/docs_pages.py) need inline scripts and eval, still from this origin only."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every HTTP response; a route's own CSP wins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own_policy = headers.get("Content-Security-Policy")
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if own_policy:
                    headers["Content-Security-Policy"] = own_policy
            await send(message)

        await self.app(scope, receive, send_with_headers)
