"""Events the gateway publishes about accounts. The only events that carry phone numbers: the
notifications service needs them to reach people; nothing else may store them."""

from marshmallow import fields, validate

from linli_kit.events.catalogue import CATALOGUE, EventSchema
from linli_kit.events.contracts._fields import id_list, one_of, text, uuid, when

ROLES = ("resident", "community_staff", "property_manager", "agency", "street_official", "city_admin")


class UserChanged(EventSchema):
    """accounts.user.registered / accounts.user.updated: the account as it now is."""

    personal_data = True  # the phone number

    user_id = uuid()
    role = one_of(*ROLES)
    display_name = text(200)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\+?\d{6,15}$"))
    locale = fields.String(load_default="zh-CN", validate=validate.Length(min=2, max=16))
    street_id = uuid(required=False)
    community_ids = id_list()
    # property_manager: the company; agency: the bureau.
    organisation_id = uuid(required=False)
    organisation_name = text(200, required=False)
    active = fields.Boolean(load_default=True)
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


class CodeRequested(EventSchema):
    """A one-time code to send by SMS at once (quiet hours do not apply). Never log `code`."""

    personal_data = True  # the phone number and the code

    phone = fields.String(required=True, validate=validate.Regexp(r"^\+?\d{6,15}$"))
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{4,8}$"))
    purpose = one_of("signup", "login", "reset")
    locale = fields.String(load_default="zh-CN")
    expires_at = when()


CATALOGUE.register("accounts.user.registered", 1, UserChanged)
CATALOGUE.register("accounts.user.updated", 1, UserChanged)
CATALOGUE.register("accounts.code.requested", 1, CodeRequested)
