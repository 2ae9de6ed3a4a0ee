"""The catalogue of decision facts: every name, its type in the strategy language, its family,
what it means and when it is NULL. :func:`fact_schema` is what a decision strategy is checked
against; ``docs/decisioning.md`` describes the same facts family by family.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditfactory.decisioning.model import WINDOWS

#: Types of the strategy language.
NUMBER, STRING, BOOL, DATE = "number", "string", "bool", "date"


@dataclass(frozen=True, slots=True)
class FactDef:
    name: str
    type: str
    family: str
    meaning: str
    null_when: str = "never"


def _velocity() -> list[FactDef]:
    keys = {
        "id": ("ID number", "never"),
        "phone": ("phone", "never"),
        "device": ("device fingerprint", "the application has no device fingerprint"),
        "ip": ("IP address", "the application has no IP address"),
    }
    out: list[FactDef] = []
    for key, (what, null_when) in keys.items():
        for window in WINDOWS:
            out.append(
                FactDef(
                    f"apps_per_{key}_{window}",
                    NUMBER,
                    "velocity",
                    f"Earlier applications with the same {what} in the {window} before this one",
                    null_when,
                )
            )
    return out


FACTS: tuple[FactDef, ...] = (
    *_velocity(),
    # --- person
    FactDef(
        "customer_known",
        BOOL,
        "person",
        "The application names a customer the bank holds",
    ),
    FactDef(
        "phone_matches_customer",
        BOOL,
        "person",
        "The phone given is the customer's phone on file",
        "the customer is unknown",
    ),
    FactDef(
        "id_matches_customer",
        BOOL,
        "person",
        "The ID number given is the customer's ID number on file",
        "the customer is unknown",
    ),
    # --- device
    FactDef("device_is_emulator", BOOL, "device", "The application came from an emulator"),
    FactDef("device_is_rooted", BOOL, "device", "The application came from a rooted or jail-broken device"),
    FactDef(
        "device_applicants_30d",
        NUMBER,
        "device",
        "Other people (distinct ID numbers) who applied from this device in the 30 days before",
        "no device fingerprint",
    ),
    FactDef(
        "device_shared_people",
        NUMBER,
        "device",
        "Other people linked to this device in the graph (the bank's device extract and earlier "
        "applications)",
        "no device fingerprint",
    ),
    FactDef(
        "device_first_seen_date",
        DATE,
        "device",
        "The day the bank first saw this device (first login in the extract or first application)",
        "no device fingerprint, or a device never seen before",
    ),
    FactDef(
        "device_age_days",
        NUMBER,
        "device",
        "Days from the device's first sighting to the business date",
        "as device_first_seen_date",
    ),
    FactDef(
        "device_negative",
        BOOL,
        "device",
        "The device fingerprint is on the negative list",
        "no device fingerprint",
    ),
    # --- location
    FactDef("location_given", BOOL, "location", "The application carries a location"),
    FactDef(
        "distance_home_branch_km",
        NUMBER,
        "location",
        "Great-circle distance from the application's location to the customer's home branch",
        "no location, or the customer is unknown",
    ),
    FactDef(
        "distance_home_km",
        NUMBER,
        "location",
        "Great-circle distance from the application's location to the customer's home address",
        "no location, unknown customer, or no home coordinates on file",
    ),
    # --- relationship graph
    FactDef(
        "graph_hops_to_negative",
        NUMBER,
        "graph",
        "Fewest links from the applicant to a node on the negative list (0 = the applicant's own "
        "ID number is listed; 1 = own phone, device, IP or a declared contact; 2 = someone sharing "
        "one of those; ...)",
        "nothing on the negative list within max_hops",
    ),
    FactDef(
        "graph_component_size",
        NUMBER,
        "graph",
        "People in the applicant's group: everyone linked through shared phones, devices, IP "
        "addresses or addresses, the applicant included, capped at group_cap",
    ),
    FactDef(
        "graph_negative_neighbours",
        NUMBER,
        "graph",
        "Nodes on the negative list within neighbour_hops (other than the applicant's own ID number)",
    ),
    FactDef(
        "graph_declined_neighbours",
        NUMBER,
        "graph",
        "Other people within neighbour_hops whose applications were declined",
    ),
    FactDef(
        "graph_defaulted_neighbours",
        NUMBER,
        "graph",
        "Other people within neighbour_hops who defaulted (a written-off loan, 90+ days past due)",
    ),
    FactDef(
        "graph_shared_device_customers",
        NUMBER,
        "graph",
        "Other people who used one of the applicant's devices",
    ),
    FactDef(
        "graph_shared_contact_customers",
        NUMBER,
        "graph",
        "Other people linked by a declared contact: they list the applicant's phone, the applicant "
        "lists theirs, or both list the same phone",
    ),
    FactDef(
        "graph_shared_ip_customers",
        NUMBER,
        "graph",
        "Other people who used one of the applicant's IP addresses",
    ),
    FactDef(
        "graph_truncated",
        BOOL,
        "graph",
        "The search met a node with more than degree_cap links (not expanded) or hit a size cap, "
        "so the graph facts are lower bounds",
    ),
    # --- income
    FactDef("income_declared", NUMBER, "income", "Declared annual income, yuan", "nothing declared"),
    FactDef(
        "income_observed",
        NUMBER,
        "income",
        "Highest annual income the bank observes (payroll, social-security base, tax revenue, "
        "account credits), yuan",
        "no portrait row, or nothing observed",
    ),
    FactDef(
        "income_observed_source",
        STRING,
        "income",
        "Which source gave income_observed: payroll, social, tax or flows",
        "as income_observed",
    ),
    FactDef("income_sources", NUMBER, "income", "How many of the four sources observe an income"),
    FactDef(
        "income_declared_to_observed",
        NUMBER,
        "income",
        "Declared over observed annual income",
        "nothing declared or nothing observed",
    ),
    FactDef(
        "income_declared_to_payroll",
        NUMBER,
        "income",
        "Declared income over 12 x the average payroll credit",
        "nothing declared or no payroll in 12 months",
    ),
    FactDef(
        "income_declared_to_social",
        NUMBER,
        "income",
        "Declared income over 12 x the average social-security contribution base",
        "nothing declared or no paid contribution in 12 months",
    ),
    FactDef(
        "income_declared_to_tax",
        NUMBER,
        "income",
        "Declared income over the revenue declared for tax in a year",
        "nothing declared or no tax filing in 12 months",
    ),
    FactDef(
        "income_declared_to_flows",
        NUMBER,
        "income",
        "Declared income over 12 x the average monthly credits (annual_income_est)",
        "nothing declared or no credits in 12 months",
    ),
    FactDef(
        "income_overstated",
        BOOL,
        "income",
        "Declared income exceeds income_factor x the observed income",
        "as income_declared_to_observed",
    ),
    FactDef(
        "income_observed_as_of",
        DATE,
        "income",
        "As-of date of the portrait the observed income comes from",
        "no portrait row",
    ),
)

BY_NAME: dict[str, FactDef] = {f.name: f for f in FACTS}

#: Fact families in the order the gatherers run.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f.family for f in FACTS))


def fact_schema() -> dict[str, str]:
    """Fact name -> ``number`` | ``string`` | ``bool`` | ``date``: what a decision strategy can use."""
    return {f.name: f.type for f in FACTS}
