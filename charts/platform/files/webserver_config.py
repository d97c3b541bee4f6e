"""FAB's login through the OpenID Connect provider of settings' ``airflow.auth.oidc`` (api-server pods).

The deploy puts this file in the official chart's ``apiServer.apiServerConfig`` (the chart mounts it as
``$AIRFLOW_HOME/webserver_config.py``, which ``[fab] config_file`` points at) when settings have an
``oidc`` section (airstack.deploy.chart_values.with_oidc). Input, from the environment only:

  AIRSTACK_OIDC                 JSON: provider, client_id, server_metadata_url, scopes, roles_claim,
                                role_mapping, default_role (not secret: settings' readable part)
  AIRSTACK_OIDC_CLIENT_SECRET   from Secret <release>-oidc (the platform chart), never a ConfigMap

Users from the IdP are named ``<provider>:<preferred_username>``: a ``:`` never appears in settings'
usernames, so an IdP account can never become a user of ``airflow.users`` (kept with passwords by
files/sync_users.py, which leaves ``:`` users alone). Roles follow the IdP at every login; a user in no
mapped group gets ``default_role``, or is refused when there is none. Password users still get API tokens
(``POST /auth/token``: FAB checks passwords for every AUTH_TYPE but LDAP): the break-glass path.
No Jinja braces in this file: the chart renders apiServerConfig with ``tpl``.
"""

import json
import logging
import os

from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
from flask_appbuilder.const import AUTH_OAUTH

log = logging.getLogger(__name__)
OIDC = json.loads(os.environ["AIRSTACK_OIDC"])
PROVIDER = OIDC["provider"]

AUTH_TYPE = AUTH_OAUTH
OAUTH_PROVIDERS = [dict(
    name=PROVIDER,
    icon="fa-openid",
    token_key="access_token",
    remote_app=dict(
        client_id=OIDC["client_id"],
        client_secret=os.environ["AIRSTACK_OIDC_CLIENT_SECRET"],
        server_metadata_url=OIDC["server_metadata_url"],
        client_kwargs=dict(scope=" ".join(OIDC["scopes"])),
    ),
)]
AUTH_ROLES_MAPPING = dict((group, [role]) for group, role in OIDC["role_mapping"].items())
AUTH_ROLES_SYNC_AT_LOGIN = True
AUTH_USER_REGISTRATION = True
AUTH_USER_REGISTRATION_ROLE = OIDC["default_role"]


def user_info(claims):
    """FAB's user fields from the IdP's claims (ID token and userinfo endpoint)."""
    name = claims.get("preferred_username") or claims.get("email") or claims.get("sub") or ""
    groups = claims.get(OIDC["roles_claim"]) or []
    return dict(
        username=f"{PROVIDER}:{name}" if name else "",
        email=claims.get("email", ""),
        first_name=claims.get("given_name", ""),
        last_name=claims.get("family_name", ""),
        role_keys=[groups] if isinstance(groups, str) else list(groups),
    )


class OidcSecurityManager(FabAirflowSecurityManagerOverride):
    """FAB's security manager, reading the user from standard OIDC claims and refusing unmapped users."""

    def get_oauth_user_info(self, provider, resp):
        if provider != PROVIDER:
            return super().get_oauth_user_info(provider, resp)
        claims = dict(resp.get("userinfo") or dict())
        claims.update(self.oauth_remotes[provider].userinfo(token=resp))
        return user_info(claims)

    def auth_user_oauth(self, userinfo, rotate_session_id=True):
        if not self._oauth_calculate_user_roles(userinfo):
            log.warning("OIDC login refused: %s is in no mapped group and there is no default role",
                        userinfo.get("username"))
            return None
        return super().auth_user_oauth(userinfo, rotate_session_id)


SECURITY_MANAGER_CLASS = OidcSecurityManager
