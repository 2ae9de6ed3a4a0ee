"""Security: principals, roles and permissions; ID-number and phone validation; PII protection.

The submodules are importable on their own (``from creditfactory.security import idcard``);
the names most callers need are re-exported here.
"""

from creditfactory.security import idcard, masking, phone, pii, roles
from creditfactory.security.idcard import IdNumber, InvalidIdNumber
from creditfactory.security.masking import mask_address, mask_id_number, mask_name, mask_phone
from creditfactory.security.phone import InvalidPhone
from creditfactory.security.pii import PiiError, PiiVault, generate_key, load_or_create_key
from creditfactory.security.roles import (
    ROLE_PERMISSIONS,
    SYSTEM,
    Permission,
    Principal,
    PrincipalKind,
    Role,
    require,
)

__all__ = [
    "ROLE_PERMISSIONS",
    "SYSTEM",
    "IdNumber",
    "InvalidIdNumber",
    "InvalidPhone",
    "Permission",
    "PiiError",
    "PiiVault",
    "Principal",
    "PrincipalKind",
    "Role",
    "generate_key",
    "idcard",
    "load_or_create_key",
    "mask_address",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "masking",
    "phone",
    "pii",
    "require",
    "roles",
]
