"""Explicit server settings: everything the app factory needs, nothing read from globals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerSettings"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How a tracking server is configured.

    Args:
        backend_store_uri: the tracking store (a folder, ``sqlite:///``, ``postgresql://``).
        artifacts_destination: where proxied artifacts live; defaults to the store's root.
        serve_artifacts: hand out ``mlflow-artifacts:`` locations and proxy artifact traffic,
            so clients never touch the artifact store directly.
        max_request_bytes: largest JSON API body accepted (larger → 413).
        max_upload_bytes: largest artifact upload accepted (larger → 413).
        auth: require sign-in (HTTP Basic or a bearer token) and check permissions on every
            route; off, the server answers anyone who can reach it.
        auth_default_permission: what signed-in users may do with experiments and registered
            models they hold no permission on: READ, EDIT, MANAGE or NO_PERMISSIONS.
        auth_max_failures: failed sign-ins from one address or for one username within
            ``auth_failure_window`` seconds before further attempts get 429.
        auth_cache_seconds: how long a verified credential or permission is remembered;
            changes made elsewhere (CLI, other workers) apply within this time.
        allowed_hosts: ``Host`` names answered besides ``localhost`` and IP addresses
            (``*.example.com`` matches subdomains, ``*`` any name); other names get 400, so a
            DNS-rebinding page cannot reach the server through a name it controls.
        trusted_origins: origins (``https://ui.example.com``) besides the server's own whose
            browser pages may send state-changing requests.
        restrict_client_uris: refuse ``file:`` and local paths, and addresses of this or
            private networks, in experiment locations and model version sources sent by clients.
    """

    backend_store_uri: str = ".cairn"
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    max_request_bytes: int = 16 * MiB
    max_upload_bytes: int = 5 * 1024 * MiB
    auth: bool = False
    auth_default_permission: str = "READ"
    auth_max_failures: int = 10
    auth_failure_window: float = 300.0
    auth_cache_seconds: float = 10.0
    allowed_hosts: tuple[str, ...] = ()
    trusted_origins: tuple[str, ...] = ()
    restrict_client_uris: bool = True
