"""HTTP API of identity: `/api/v1/auth/...` (sign-up by SMS code, login, tokens, people, API keys)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_gateway.adapters.passwords import HashingBusy
from linli_gateway.domain.accounts import AccountError, User
from linli_gateway.entrypoints.limits import client_address
from linli_gateway.service_layer import accounts
from linli_gateway.service_layer.accounts import Identity, TokenPair
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.auth import Principal
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, Unauthorized
from linli_kit.web import require_principal

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts, tokens and API keys")

ROLES = ("resident", "community_staff", "property_manager", "agency", "street_official", "city_admin")


class CodeRequestSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=6, max=20))
    purpose = fields.String(
        load_default="signup",
        validate=validate.OneOf(["signup", "reset", "login"]),
        metadata={"description": "signup: a number with no account; reset and login: one with an account"},
    )
    locale = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))


class CodeSentSchema(Schema):
    expires_at = fields.AwareDateTime()


class SignUpSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=6, max=20))
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    community_id = fields.UUID(required=True)
    locale = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))


class PasswordResetSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=6, max=20))
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))


class LoginSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=1, max=20))
    password = fields.String(load_only=True, validate=validate.Length(min=1, max=200))
    code = fields.String(
        load_only=True,
        validate=validate.Regexp(r"^\d{6}$"),
        metadata={"description": "instead of a password: the code sent by `POST /codes` with purpose `login`"},
    )

    @validates_schema
    def exactly_one_secret(self, data: dict, **_kwargs: Any) -> None:
        if "password" in data and "code" in data:
            raise ValidationError("give either a password or an SMS code, not both", "code")
        if "password" not in data and "code" not in data:
            raise ValidationError("a password or an SMS code is required", "password")


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class LogoutSchema(Schema):
    refresh_token = fields.String(load_default=None, validate=validate.Length(min=10, max=200))
    everywhere = fields.Boolean(
        load_default=False, metadata={"description": "end every session of the account, on every device"}
    )


class UserSchema(Schema):
    id = fields.String(dump_only=True)
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=6, max=20))
    street_id = fields.UUID(load_default=None, allow_none=True)
    community_ids = fields.List(fields.UUID(), load_default=list)
    organisation_id = fields.UUID(load_default=None, allow_none=True)
    organisation_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    locale = fields.String(load_default="zh-CN", validate=validate.OneOf(["zh-CN", "en"]))
    password = fields.String(load_default=None, load_only=True, validate=validate.Length(min=1, max=200))
    status = fields.String(dump_only=True)
    revision = fields.Integer(dump_only=True)


class TokenPairSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    user = fields.Nested(UserSchema)


class MePatchSchema(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=200))
    locale = fields.String(validate=validate.OneOf(["zh-CN", "en"]))
    password = fields.String(load_only=True, validate=validate.Length(min=1, max=200))
    current_password = fields.String(load_only=True, validate=validate.Length(min=1, max=200))


class UserPatchSchema(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=200))
    locale = fields.String(validate=validate.OneOf(["zh-CN", "en"]))
    status = fields.String(validate=validate.OneOf(["active", "disabled"]))


class UserFilterSchema(Schema):
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    community_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(["active", "pending", "disabled"]))


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    street_id = fields.UUID(load_default=None, allow_none=True)
    community_ids = fields.List(fields.UUID(), load_default=list)


class ApiKeySchema(Schema):
    id = fields.String()
    name = fields.String()
    street_id = fields.String(allow_none=True)
    community_ids = fields.List(fields.String())
    created_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)
    key = fields.String(metadata={"description": "the key itself; shown once, at creation"})


_ERRORS: dict[str, type[ServiceError]] = {
    "invalid": Invalid,
    "forbidden": Forbidden,
    "conflict": Conflict,
    "unauthorized": Unauthorized,
    "not_found": NotFound,
}


class LockedOut(ServiceError):
    status = 429
    code = "locked_out"


class Busy(ServiceError):
    status = 503
    code = "busy"
    retry_after = 1


class PendingApproval(ServiceError):
    status = 403
    code = "pending_approval"


def _translate(error: AccountError) -> ServiceError:
    if error.kind == "locked":
        return LockedOut(error.message)
    if error.kind == "pending":
        return PendingApproval(error.message)
    fields_ = {error.field_name: [error.message]} if error.field_name else None
    return _ERRORS[error.kind](error.message, fields=fields_)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except AccountError as error:
        raise _translate(error) from error


def _uow() -> GatewayUnitOfWork:
    return GatewayUnitOfWork(current_app.extensions["linli.database"])


def _identity() -> Identity:
    return current_app.extensions["linli.identity"]


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


def user_view(user: User, viewer: Principal | None) -> dict[str, Any]:
    """Personal data in full only for the owner; staff see a masked number."""
    own = viewer is not None and viewer.user_id == user.id
    return {
        "id": user.id,
        "display_name": user.display_name,
        "role": user.role,
        "phone": user.phone if own else mask_phone(user.phone),
        "street_id": user.street_id,
        "community_ids": list(user.community_ids),
        "organisation_id": user.organisation_id,
        "organisation_name": user.organisation_name,
        "locale": user.locale,
        "status": user.status,
        "revision": user.revision,
    }


def _pair(pair: TokenPair) -> dict[str, Any]:
    viewer = Principal(user_id=pair.user.id, role=pair.user.role)
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "user": user_view(pair.user, viewer),
    }


def _strings(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key.endswith("_ids"):
            out[key] = [str(v) for v in value]
        elif key.endswith("_id") and value is not None:
            out[key] = str(value)
        else:
            out[key] = value
    return out


@blp.route("/codes", methods=["POST"])
@blp.arguments(CodeRequestSchema)
@blp.response(202, CodeSentSchema)
def request_code(body: dict) -> dict:
    """Send a one-time code by SMS: to sign up, to set a forgotten password, or to log in without one."""
    return {"expires_at": _call(accounts.request_code, _uow(), _identity(), **body)}


@blp.route("/signup", methods=["POST"])
@blp.arguments(SignUpSchema)
@blp.response(201, UserSchema)
def sign_up(body: dict) -> dict:
    """Sign up as a resident with the code received by SMS; community staff then approve."""
    user = _call(accounts.sign_up, _uow(), _identity(), **_strings(body))
    return user_view(user, Principal(user_id=user.id, role=user.role))


@blp.route("/password-reset", methods=["POST"])
@blp.arguments(PasswordResetSchema)
@blp.response(204)
def password_reset(body: dict) -> None:
    """Set a new password with a code received by SMS (also for people registered without one). Every
    session of the account ends: its tokens are refused everywhere within a second."""
    user = _call(accounts.reset_password, _uow(), _identity(), **body)
    _sessions_ended(user)


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
def login(body: dict) -> dict:
    """Log in with phone and password, or phone and an SMS code (`POST /codes` with purpose `login`;
    each code works once). Five failures in a row from one address (wrong passwords and wrong codes
    alike) lock the account out from that address for 15 minutes (429 `locked_out`); from elsewhere it
    still logs in. When every password-hashing worker of the process is busy: 503 `busy` with
    Retry-After."""
    try:
        return _pair(_call(accounts.login, _uow(), _identity(), client=client_address(), **body))
    except HashingBusy as busy:
        raise Busy(str(busy)) from busy


@blp.route("/refresh", methods=["POST"])
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
def refresh(body: dict) -> dict:
    """Trade a refresh token for a new pair; the old refresh token stops working."""
    return _pair(_call(accounts.refresh, _uow(), _identity(), **body))


@blp.route("/logout", methods=["POST"])
@blp.arguments(LogoutSchema)
@blp.response(204)
def logout(body: dict) -> None:
    principal = require_principal()
    token = request.headers["Authorization"].split(" ", 1)[1].strip()
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    ended = _call(
        accounts.logout,
        _uow(),
        _identity(),
        principal,
        access_expires_at=datetime.fromtimestamp(expires, UTC),
        refresh_token=body.get("refresh_token"),
        everywhere=body["everywhere"],
    )
    revoked = current_app.extensions["linli.verifier"].revoked
    # This process stops accepting the tokens at once; the others within a second.
    if ended is not None:
        revoked.end_sessions(principal.user_id, ended)
    elif principal.token_id:
        revoked.add(principal.token_id)


def _sessions_ended(user: User) -> None:
    if user.tokens_not_before is not None:
        current_app.extensions["linli.verifier"].revoked.end_sessions(user.id, user.tokens_not_before)


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, UserSchema)
    def get(self) -> dict:
        principal = require_principal()
        if principal.role == "api_client":
            raise NotFound("API clients have no account")
        return user_view(_call(accounts.get_user, _uow(), principal, principal.user_id), principal)

    @blp.arguments(MePatchSchema)
    @blp.response(200, UserSchema)
    def patch(self, body: dict) -> dict:
        principal = require_principal()
        user = _call(accounts.update_user, _uow(), _identity(), principal, principal.user_id, body)
        return user_view(user, principal)


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(UserFilterSchema, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        """People in your scope (staff only)."""
        principal = require_principal()
        users, total = _call(
            accounts.list_users,
            _uow(),
            principal,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            **_strings(filters),
        )
        pagination_parameters.item_count = total
        return [user_view(u, principal) for u in users]

    @blp.arguments(UserSchema)
    @blp.response(201, UserSchema)
    def post(self, body: dict) -> dict:
        """Register someone: street officials by a city admin, staff by a street official, residents by
        community staff (the password may be left out for someone without a smartphone)."""
        principal = require_principal()
        user = _call(accounts.register_user, _uow(), principal, _identity(), **_strings(body))
        return user_view(user, principal)


@blp.route("/users/<uuid:user_id>")
class UserById(MethodView):
    @blp.response(200, UserSchema)
    def get(self, user_id: Any) -> dict:
        principal = require_principal()
        return user_view(_call(accounts.get_user, _uow(), principal, str(user_id)), principal)

    @blp.arguments(UserPatchSchema)
    @blp.response(200, UserSchema)
    def patch(self, body: dict, user_id: Any) -> dict:
        """Staff in scope rename someone, change their locale, or disable them (every session of a
        disabled account ends: its tokens are refused everywhere within a second)."""
        principal = require_principal()
        user = _call(accounts.update_user, _uow(), _identity(), principal, str(user_id), body)
        _sessions_ended(user)
        return user_view(user, principal)


@blp.route("/users/<uuid:user_id>/approve", methods=["POST"])
@blp.response(200, UserSchema)
def approve(user_id: Any) -> dict:
    principal = require_principal()
    return user_view(_call(accounts.approve_user, _uow(), principal, str(user_id)), principal)


@blp.route("/users/<uuid:user_id>/lockouts", methods=["DELETE"])
@blp.response(204)
def lift_lockouts(user_id: Any) -> None:
    """Let someone locked out by failed logins log in again from everywhere (staff who manage the
    account; a password reset by SMS does the same)."""
    _call(accounts.lift_lockouts, _uow(), require_principal(), str(user_id))


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @blp.response(200, ApiKeySchema(many=True))
    def get(self) -> list:
        return _call(accounts.list_api_keys, _uow(), require_principal())

    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeySchema)
    def post(self, body: dict) -> dict:
        """Issue a key for a third-party client (city hotline, Open311 app). The key is shown once."""
        key, presented = _call(accounts.create_api_key, _uow(), require_principal(), _identity(), **_strings(body))
        fields_ = ("id", "name", "street_id", "community_ids", "created_at", "revoked_at")
        return {**{name: getattr(key, name) for name in fields_}, "key": presented}


@blp.route("/api-keys/<key_id>", methods=["DELETE"])
@blp.response(200, ApiKeySchema)
def revoke_key(key_id: str) -> Any:
    return _call(accounts.revoke_api_key, _uow(), require_principal(), _identity(), key_id)
