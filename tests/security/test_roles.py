"""Roles, permissions and principals."""

from __future__ import annotations

import pytest

from creditfactory.errors import PermissionDenied
from creditfactory.security.roles import (
    ROLE_PERMISSIONS,
    SYSTEM,
    Permission,
    Principal,
    PrincipalKind,
    Role,
    require,
)

P = Permission


def staff(*roles: Role, branch_id: str | None = None) -> Principal:
    return Principal("u-1", frozenset(roles), branch_id=branch_id)


class TestEnums:
    def test_permission_values_are_dotted(self) -> None:
        assert P.CUSTOMER_READ_PII == "customer.read_pii"
        assert all("." in p.value for p in Permission)
        assert len(Permission) == 14

    def test_role_values(self) -> None:
        assert Role("it_operations") is Role.IT_OPERATIONS
        assert len(Role) == 11


class TestRolePermissions:
    def test_every_role_has_an_entry(self) -> None:
        assert set(ROLE_PERMISSIONS) == set(Role)

    def test_cannot_be_changed(self) -> None:
        with pytest.raises(TypeError):
            ROLE_PERMISSIONS[Role.CUSTOMER] = frozenset(Permission)  # type: ignore[index]

    def test_admin_and_system_hold_everything(self) -> None:
        assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
        assert ROLE_PERMISSIONS[Role.SYSTEM] == frozenset(Permission)

    @pytest.mark.parametrize("role", [Role.CUSTOMER, Role.PARTNER])
    def test_outsiders_hold_no_staff_permission(self, role: Role) -> None:
        assert ROLE_PERMISSIONS[role] == frozenset()

    def test_account_manager_sees_customers_masked_only(self) -> None:
        am = ROLE_PERMISSIONS[Role.ACCOUNT_MANAGER]
        assert P.CUSTOMER_READ in am
        assert P.CUSTOMER_READ_PII not in am
        assert P.APPLICATION_APPROVE not in am

    def test_only_deciding_roles_see_pii(self) -> None:
        with_pii = {r for r, perms in ROLE_PERMISSIONS.items() if P.CUSTOMER_READ_PII in perms}
        assert with_pii == {Role.UNDERWRITER, Role.APPROVER, Role.ADMIN, Role.SYSTEM}

    def test_model_trainer_does_not_approve_models(self) -> None:
        assert P.MODEL_TRAIN in ROLE_PERMISSIONS[Role.RISK_ANALYST]
        assert P.MODEL_APPROVE not in ROLE_PERMISSIONS[Role.RISK_ANALYST]

    def test_underwriter_reviews_but_does_not_approve(self) -> None:
        assert P.APPLICATION_REVIEW in ROLE_PERMISSIONS[Role.UNDERWRITER]
        assert P.APPLICATION_APPROVE not in ROLE_PERMISSIONS[Role.UNDERWRITER]
        assert P.APPLICATION_APPROVE in ROLE_PERMISSIONS[Role.APPROVER]

    def test_auditor_reads_and_changes_nothing(self) -> None:
        assert ROLE_PERMISSIONS[Role.AUDITOR] == {P.AUDIT_READ, P.CUSTOMER_READ}

    def test_it_operations_runs_batches_without_customer_data(self) -> None:
        it = ROLE_PERMISSIONS[Role.IT_OPERATIONS]
        assert {P.EOD_RUN, P.CONTRACT_INGEST} <= it
        assert P.CUSTOMER_READ not in it

    def test_admin_manage_only_for_admin_and_system(self) -> None:
        holders = {r for r, perms in ROLE_PERMISSIONS.items() if P.ADMIN_MANAGE in perms}
        assert holders == {Role.ADMIN, Role.SYSTEM}


class TestPrincipal:
    def test_can_is_the_union_over_roles(self) -> None:
        p = staff(Role.RISK_ANALYST, Role.OPERATIONS)
        assert p.can(P.MODEL_TRAIN)
        assert p.can(P.CAMPAIGN_MANAGE)
        assert not p.can(P.APPLICATION_APPROVE)
        assert p.permissions == ROLE_PERMISSIONS[Role.RISK_ANALYST] | ROLE_PERMISSIONS[Role.OPERATIONS]

    def test_can_accepts_permission_names(self) -> None:
        assert staff(Role.AUDITOR).can("audit.read")

    def test_unknown_permission_name_raises(self) -> None:
        with pytest.raises(ValueError):
            staff(Role.ADMIN).can("audit.erase")

    def test_no_roles_no_permissions(self) -> None:
        p = staff()
        assert not any(p.can(perm) for perm in Permission)

    def test_role_names_become_roles(self) -> None:
        p = Principal("u-2", frozenset({"underwriter"}))  # type: ignore[arg-type]
        assert p.roles == {Role.UNDERWRITER}
        assert p.kind is PrincipalKind.STAFF

    def test_is_staff(self) -> None:
        assert staff(Role.ADMIN).is_staff
        customer = Principal("c-9", frozenset({Role.CUSTOMER}), kind="customer", customer_id="C0009")
        assert not customer.is_staff
        assert not SYSTEM.is_staff

    def test_customer_needs_a_customer_id(self) -> None:
        with pytest.raises(ValueError, match="customer_id"):
            Principal("c-9", frozenset({Role.CUSTOMER}), kind="customer")

    @pytest.mark.parametrize(
        ("kind", "role"),
        [
            ("customer", Role.ADMIN),
            ("staff", Role.SYSTEM),
            ("staff", Role.CUSTOMER),
            ("partner", Role.UNDERWRITER),
        ],
    )
    def test_roles_must_fit_the_kind(self, kind: str, role: Role) -> None:
        with pytest.raises(ValueError, match="cannot hold"):
            Principal("x", frozenset({role}), kind=kind, customer_id="C1")

    def test_unknown_kind_or_role(self) -> None:
        with pytest.raises(ValueError):
            Principal("x", frozenset(), kind="robot")
        with pytest.raises(ValueError):
            Principal("x", frozenset({"janitor"}))  # type: ignore[arg-type]

    def test_needs_an_id(self) -> None:
        with pytest.raises(ValueError):
            Principal("", frozenset({Role.ADMIN}))

    def test_is_frozen_and_hashable(self) -> None:
        p = staff(Role.AUDITOR, branch_id="B01")
        with pytest.raises(AttributeError):
            p.roles = frozenset({Role.ADMIN})  # type: ignore[misc]
        assert hash(p) == hash(staff(Role.AUDITOR, branch_id="B01"))


class TestRequire:
    def test_passes_silently(self) -> None:
        assert require(staff(Role.UNDERWRITER), P.APPLICATION_REVIEW) is None

    def test_denies_naming_principal_and_permission(self) -> None:
        with pytest.raises(PermissionDenied) as excinfo:
            require(staff(Role.ACCOUNT_MANAGER), P.CUSTOMER_READ_PII)
        error = excinfo.value
        assert "u-1" in error.message
        assert "customer.read_pii" in error.message
        assert error.details == {"principal_id": "u-1", "permission": "customer.read_pii"}
        assert error.http_status == 403

    def test_customer_cannot_use_staff_permissions(self) -> None:
        customer = Principal("c-9", frozenset({Role.CUSTOMER}), kind="customer", customer_id="C0009")
        for perm in Permission:
            with pytest.raises(PermissionDenied):
                require(customer, perm)


class TestSystem:
    def test_holds_every_permission(self) -> None:
        assert SYSTEM.kind == "system"
        assert SYSTEM.id == "system"
        for perm in Permission:
            require(SYSTEM, perm)
