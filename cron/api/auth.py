"""The read API's token scheme: DRF's per-user tokens, also accepted as ``Bearer <key>``."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <key>``, the same tokens as ``Authorization: Token <key>``."""

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Names the scheme in the OpenAPI schema (drf-spectacular would call both "tokenAuth")."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
