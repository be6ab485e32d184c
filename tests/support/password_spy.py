"""A real socket transport that remembers every ``userPassword`` Tic-Tac answered with (to prove
the password never reaches a log, a blob or an exception)."""

from __future__ import annotations

import json

import httpx


class PasswordSpy(httpx.HTTPTransport):
    """A real socket transport that remembers every ``userPassword`` Tic-Tac answered with."""

    def __init__(self) -> None:
        super().__init__()
        self.passwords: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/v1/users") and response.status_code < 300:
            self.passwords.append(json.loads(response.read())["userPassword"])
        return response
