"""The shared security suite: every authenticated route inherits it (anymail's webhook_cases).

A subclass names its ``url`` and how to authenticate; the suite checks what every machine
route must do: refuse missing, wrong and non-ASCII credentials with 401 (never 500), answer
405 to other methods, work under a CSRF-enforcing client (the routes authenticate with secrets,
not cookies), and stay reachable with LoginRequiredMiddleware installed. Every prefix of the
real credential (empty included), ``t`` and ``,`` in every place the route reads one is a 401
that stores nothing (a comparison that checked only a prefix survived the suite before).
"""

import pytest
from django.conf import settings
from django.test import Client


@pytest.mark.django_db
class AuthenticatedRouteSuite:
    url: str = ""
    allowed_methods: tuple[str, ...] = ("GET", "POST")
    refused_methods: tuple[str, ...] = ("PUT", "PATCH", "DELETE")

    def good_headers(self) -> dict:
        """Headers that authenticate (as Client kwargs, e.g. HTTP_AUTHORIZATION)."""
        raise NotImplementedError

    def wrong_headers(self) -> list[dict]:
        """Several ways of sending a wrong credential."""
        raise NotImplementedError

    def non_ascii_headers(self) -> list[dict]:
        raise NotImplementedError

    credential: str = ""

    def credential_headers(self, value: str) -> list[dict]:
        """Client kwargs sending ``value`` in each place the route reads its credential."""
        raise NotImplementedError

    def stored_rows(self) -> int:
        """How many rows the route has written (must not move on a refused request)."""
        raise NotImplementedError

    def request(self, client: Client, method: str = "POST", **headers):
        return getattr(client, method.lower())(self.url, **headers)

    def test_suite__missing_credentials_are_401(self):
        """No credential at all: 401 with the contract's error body."""
        response = self.request(Client())
        assert response.status_code == 401, response.content
        assert response.json()["success"] is False

    def test_suite__wrong_credentials_are_401(self):
        for headers in self.wrong_headers():
            response = self.request(Client(), **headers)
            assert response.status_code == 401, (headers, response.content)

    def test_suite__non_ascii_credentials_are_401_not_500(self):
        for headers in self.non_ascii_headers():
            response = self.request(Client(), **headers)
            assert response.status_code == 401, (headers, response.content)

    def test_suite__other_methods_are_405(self):
        for method in self.refused_methods:
            response = self.request(Client(), method, **self.good_headers())
            assert response.status_code == 405, (method, response.content)

    def test_suite__csrf_enforcing_client_is_not_refused(self):
        """The route authenticates with a secret, so CSRF must not get in its way."""
        response = self.request(Client(enforce_csrf_checks=True), "POST", **self.good_headers())
        assert response.status_code not in (401, 403), response.content

    def test_suite__login_required_middleware_is_installed(self):
        """Everything else needs a login; this route opts out explicitly."""
        assert "django.contrib.auth.middleware.LoginRequiredMiddleware" in settings.MIDDLEWARE
        response = self.request(Client(), "POST", **self.good_headers())
        assert response.status_code != 302

    def test_suite__prefixes_of_the_credential_are_401_and_store_nothing(self):
        """``Bearer t``, a prefix of the secret, an empty one, ``,``: all 401, nothing stored."""
        assert len(self.credential) > 2
        candidates = [self.credential[:n] for n in range(len(self.credential))] + ["t", ",", " "]
        before = self.stored_rows()
        for value in candidates:
            for headers in self.credential_headers(value):
                response = self.request(Client(), **headers)
                assert response.status_code == 401, (headers, response.content)
        assert self.stored_rows() == before
