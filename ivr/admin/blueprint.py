"""The admin blueprint: every route behind it needs a signed-in admin and is never cached."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ivr.auth import login_manager, signed_in_agent

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def admins_only() -> BaseResponse | None:
    """Every admin route, including ones added later: sign-in first, then the admin role."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    if not getattr(current_user, "is_admin", False):
        abort(403)
    return None


@bp.after_request
def not_cached(response: Response) -> Response:
    """Admin pages show callers' numbers and unpublished flows: no shared or back-button cache."""
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def who() -> str:
    """What the history records as the signed-in admin."""
    return signed_in_agent().username
