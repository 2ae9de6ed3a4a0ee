"""Who may do what: roles, permissions, principals and the one check services call.

Permissions are dotted ``<area>.<action>`` names. Each :class:`Role` grants a fixed set of
them (:data:`ROLE_PERMISSIONS`), chosen for separation of duties: whoever trains a model does
not approve it, whoever markets to a customer does not approve their loan, and only the
roles that decide or service a loan see a customer's full identity (``customer.read_pii``);
everyone else sees masked values. Customers and partner platforms hold no staff permission;
what they may touch is decided by ownership (their own ``customer_id``) and by the open API's
keys.

>>> analyst = Principal("u-17", frozenset({Role.RISK_ANALYST}))
>>> analyst.can(Permission.MODEL_TRAIN), analyst.can(Permission.MODEL_APPROVE)
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from creditfactory.errors import PermissionDenied

__all__ = [
    "ROLE_PERMISSIONS",
    "SYSTEM",
    "Permission",
    "Principal",
    "PrincipalKind",
    "Role",
    "require",
]


class Role(StrEnum):
    RISK_ANALYST = "risk_analyst"
    OPERATIONS = "operations"
    ACCOUNT_MANAGER = "account_manager"
    UNDERWRITER = "underwriter"
    APPROVER = "approver"
    IT_OPERATIONS = "it_operations"
    AUDITOR = "auditor"
    ADMIN = "admin"
    CUSTOMER = "customer"
    PARTNER = "partner"
    SYSTEM = "system"


class Permission(StrEnum):
    CUSTOMER_READ = "customer.read"
    """See customer records with personal data masked."""
    CUSTOMER_READ_PII = "customer.read_pii"
    """See ID number, phone, name and address in full (every access is audited)."""
    CONTRACT_INGEST = "contract.ingest"
    SANDBOX_GENERATE = "sandbox.generate"
    MODEL_TRAIN = "model.train"
    MODEL_APPROVE = "model.approve"
    WHITELIST_MINE = "whitelist.mine"
    CAMPAIGN_MANAGE = "campaign.manage"
    APPLICATION_REVIEW = "application.review"
    APPLICATION_APPROVE = "application.approve"
    LOAN_MANAGE = "loan.manage"
    EOD_RUN = "eod.run"
    AUDIT_READ = "audit.read"
    ADMIN_MANAGE = "admin.manage"


_P = Permission
_ALL = frozenset(Permission)

#: Permissions granted by each role. Immutable; a principal's permissions are the union
#: over its roles.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        # Builds and back-tests models and mining strategies on tokenised data.
        Role.RISK_ANALYST: frozenset(
            {_P.CUSTOMER_READ, _P.MODEL_TRAIN, _P.WHITELIST_MINE, _P.SANDBOX_GENERATE}
        ),
        # Head-office campaigns over the whitelist, and loan servicing back office.
        Role.OPERATIONS: frozenset({_P.CUSTOMER_READ, _P.CAMPAIGN_MANAGE, _P.LOAN_MANAGE}),
        # Branch staff: their customers, masked; prepares applications, does not approve them.
        Role.ACCOUNT_MANAGER: frozenset({_P.CUSTOMER_READ, _P.APPLICATION_REVIEW}),
        # Manual review with the full decision trace and the applicant's identity.
        Role.UNDERWRITER: frozenset({_P.CUSTOMER_READ, _P.CUSTOMER_READ_PII, _P.APPLICATION_REVIEW}),
        # The checker: approves applications and limits, and models trained by others.
        Role.APPROVER: frozenset(
            {
                _P.CUSTOMER_READ,
                _P.CUSTOMER_READ_PII,
                _P.APPLICATION_REVIEW,
                _P.APPLICATION_APPROVE,
                _P.MODEL_APPROVE,
            }
        ),
        # Runs imports and the end-of-day batch; sees no customer data through the console.
        Role.IT_OPERATIONS: frozenset({_P.CONTRACT_INGEST, _P.EOD_RUN, _P.SANDBOX_GENERATE}),
        # Reads the audit trail and (masked) records; changes nothing.
        Role.AUDITOR: frozenset({_P.AUDIT_READ, _P.CUSTOMER_READ}),
        Role.ADMIN: _ALL,
        # Customers and partners act on their own records only, checked by ownership.
        Role.CUSTOMER: frozenset(),
        Role.PARTNER: frozenset(),
        Role.SYSTEM: _ALL,
    }
)


class PrincipalKind(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"
    PARTNER = "partner"
    SYSTEM = "system"


#: Roles each kind of principal may hold.
_ROLES_BY_KIND: Mapping[PrincipalKind, frozenset[Role]] = MappingProxyType(
    {
        PrincipalKind.STAFF: frozenset(Role) - {Role.CUSTOMER, Role.PARTNER, Role.SYSTEM},
        PrincipalKind.CUSTOMER: frozenset({Role.CUSTOMER}),
        PrincipalKind.PARTNER: frozenset({Role.PARTNER}),
        PrincipalKind.SYSTEM: frozenset({Role.SYSTEM}),
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever is acting: a staff member, a customer, a partner platform or the system.

    ``kind`` is one of ``"staff"``, ``"customer"``, ``"partner"``, ``"system"`` and limits the
    roles the principal may hold (a customer holds only :attr:`Role.CUSTOMER`, staff never
    hold the customer, partner or system roles). A customer principal carries its
    ``customer_id``; staff may carry the ``branch_id`` whose customers they serve.
    """

    id: str
    roles: frozenset[Role]
    kind: str = PrincipalKind.STAFF
    branch_id: str | None = None
    customer_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("a principal needs a non-empty id")
        if isinstance(self.roles, str):
            raise TypeError("roles must be a collection of roles, not a single string")
        try:
            kind = PrincipalKind(self.kind)
            roles = frozenset(Role(r) for r in self.roles)
        except ValueError as exc:
            raise ValueError(f"principal {self.id}: {exc}") from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "roles", roles)
        foreign = roles - _ROLES_BY_KIND[kind]
        if foreign:
            names = ", ".join(sorted(foreign))
            raise ValueError(f"principal {self.id} of kind {kind} cannot hold role(s) {names}")
        if kind is PrincipalKind.CUSTOMER and not self.customer_id:
            raise ValueError(f"customer principal {self.id} needs a customer_id")

    @property
    def is_staff(self) -> bool:
        return self.kind == PrincipalKind.STAFF

    @property
    def permissions(self) -> frozenset[Permission]:
        """Every permission granted by the principal's roles."""
        return _union(ROLE_PERMISSIONS[r] for r in self.roles)

    def can(self, perm: Permission | str) -> bool:
        """Whether one of the principal's roles grants ``perm`` (unknown names raise)."""
        wanted = Permission(perm)
        return any(wanted in ROLE_PERMISSIONS[r] for r in self.roles)


def _union(sets: Iterable[frozenset[Permission]]) -> frozenset[Permission]:
    result: frozenset[Permission] = frozenset()
    for s in sets:
        result |= s
    return result


def require(principal: Principal, perm: Permission | str) -> None:
    """Raise :class:`~creditfactory.errors.PermissionDenied` unless ``principal`` can ``perm``."""
    wanted = Permission(perm)
    if not principal.can(wanted):
        raise PermissionDenied(
            f"principal {principal.id} ({principal.kind}) lacks permission {wanted}",
            principal_id=principal.id,
            permission=str(wanted),
        )


#: The platform itself (batch jobs, event handlers): every permission.
SYSTEM = Principal("system", frozenset({Role.SYSTEM}), kind=PrincipalKind.SYSTEM)
