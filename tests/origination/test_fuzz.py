"""Property-based fuzzing of the origination routes against the app's own OpenAPI (schemathesis).

Every origination operation gets a bounded, reproducible sample of generated requests, valid
ones and ones that break the schema on purpose (bodies, paths, queries), sent as customer
C0001 with a fresh ``Idempotency-Key``; C0001 has given its consents and holds an approved
application. Every other request is aimed at C0001's own data (its customer id in the path,
its application's id), and every other application is made by C0003 with C0003's real identity
and a product that fits, so that the routes are reached past authentication, ownership and
the identity checks and what is stored is fuzzed too; an application a request creates is
withdrawn again, so that the next one can be created. No request may end in a
server error. The sample is small and derandomised so that the test takes seconds in CI;
``CREDITFACTORY_FUZZ_EXAMPLES=500`` searches harder.
"""

from __future__ import annotations

import pytest
import schemathesis

from creditfactory import origination
from creditfactory.api import create_app
from tests.fuzzing import fuzz
from tests.origination.conftest import CUSTOMERS, ON, World
from tests.origination.test_api import customer


@pytest.mark.fuzz
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_input_makes_a_server_error(world: World, mode: schemathesis.GenerationMode) -> None:
    world.consent("C0001")
    world.consent("C0003")
    own = world.submit("C0001").id
    world.decide(own, "approve")
    token = world.container.tokens.issue(customer("C0001"))
    applicant_token = world.container.tokens.issue(customer("C0003"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(world.container)).include(
        tag="origination"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/applications",
        "GET /v1/applications/{application_id}",
        "POST /v1/applications/{application_id}/contract/accept",
        "POST /v1/customers/{customer_id}/consents/{kind}/withdraw",
    }
    tried = 0

    def aim(case: schemathesis.Case) -> schemathesis.Case:
        nonlocal tried
        tried += 1
        if tried % 2:
            if isinstance(case.body, dict) and "customer_id" in case.body:
                case.body["customer_id"] = "C0001"
            if isinstance(case.body, dict) and "applicant" in case.body:
                # Past the identity and product checks, so that what is stored is fuzzed too.
                name, number, mobile = CUSTOMERS["C0003"]
                case.body.update(
                    customer_id="C0003",
                    applicant={"name": name, "id_number": number, "phone": mobile},
                    product_code="consumer_equal_installment",
                    amount="20000.00",
                    term_months=12,
                )
                case.body.pop("offer_version_id", None)
                case.body.pop("repayment_method", None)
                for contact in case.body.get("contacts") or []:
                    if isinstance(contact, dict):
                        contact["phone"] = "13900001111"
            if case.path_parameters:
                if "customer_id" in case.path_parameters:
                    case.path_parameters["customer_id"] = "C0001"
                if "application_id" in case.path_parameters:
                    case.path_parameters["application_id"] = own
        return case

    def reset(response: schemathesis.Response, case: schemathesis.Case) -> None:
        if case.method.upper() == "POST" and case.path == "/v1/applications" and response.status_code == 201:
            with world.container.uow() as uow:
                origination.withdraw_application(
                    uow, application_id=response.json()["id"], actor="fuzz", business_date=ON, now=world.now
                )
                uow.commit()

    def bearer(case: schemathesis.Case) -> str:
        applying = isinstance(case.body, dict) and case.body.get("customer_id") == "C0003"
        return applicant_token if applying else token

    assert fuzz(operations, mode, aim=aim, token=bearer, after=reset) == []
    assert tried >= len(operations)
