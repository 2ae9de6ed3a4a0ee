"""Decisions measured against the applicants' truth, on a hand-made example worked out below."""

from __future__ import annotations

import polars as pl
import pytest

from creditfactory.sandbox.measure import decision_quality

# Ten applicants. Truth: R1, R2, R3 ring members (truly bad); B1, B2 realised defaults; G1..G5 good.
TRUTH = pl.DataFrame(
    {
        "customer_id": ["R1", "R2", "R3", "B1", "B2", "G1", "G2", "G3", "G4", "G5"],
        "is_ring": [True, True, True, False, False, False, False, False, False, False],
        "bad_12m": [False, True, False, True, True, False, False, False, False, False],
        "truly_bad": [True, True, True, True, True, False, False, False, False, False],
        "pd_12m": [0.10, 0.30, 0.20, 0.40, 0.20, 0.02, 0.04, 0.01, 0.05, 0.03],
    }
)

# R1 declined, R2 referred, R3 approved at C; B1 approved at B, B2 declined;
# G1 approved A, G2 approved B, G3 declined, G4 referred, G5 approved A; X9 has no truth.
DECISIONS = pl.DataFrame(
    {
        "customer_id": ["R1", "R2", "R3", "B1", "B2", "G1", "G2", "G3", "G4", "G5", "X9"],
        "outcome": [
            "declined",
            "referred",
            "approved",
            "approve",
            "decline",
            "APPROVED",
            "approved",
            "declined",
            "refer",
            "approved",
            "approved",
        ],
        "grade": [None, None, "C", "B", None, "A", "B", None, None, "A", "A"],
    }
)


def test_the_worked_example() -> None:
    q = decision_quality(DECISIONS, TRUTH)
    assert q["applications"] == 10 and q["unmatched"] == 1
    # Approved: R3, B1, G1, G2, G5 = 5; declined: R1, B2, G3 = 3; referred: R2, G4 = 2.
    assert q["outcomes"] == {"approve": 5, "decline": 3, "refer": 2, "undecided": 0}
    assert q["approval_rate"] == pytest.approx(0.5)
    # Ring: R1 declined and R2 referred of three: 2/3 stopped, R3 through.
    assert q["ring"] == {"members": 3, "stopped": 2, "stopped_share": pytest.approx(2 / 3), "approved": 1}
    # Truly good G1..G5: G3 declined (1/5 = 20% false declines), G4 referred (20%).
    assert q["good"] == {
        "applicants": 5,
        "declined": 1,
        "false_decline_rate": pytest.approx(0.2),
        "referred": 1,
        "referred_share": pytest.approx(0.2),
    }
    # Bad but not in a ring: B1 approved, B2 declined.
    assert q["bad"] == {"applicants": 2, "approved": 1, "approved_share": pytest.approx(0.5)}
    by = {r["grade"]: r for r in q["by_grade"]}
    assert list(by) == ["A", "B", "C", "all"]
    # A: G1 (0.02), G5 (0.03): no bad, mean PD 0.025.
    assert by["A"]["approved"] == 2 and by["A"]["bad"] == 0 and by["A"]["bad_rate"] == 0.0
    assert by["A"]["true_pd"] == pytest.approx(0.025)
    # B: B1 (bad, 0.40) and G2 (0.04): one bad in two, mean PD 0.22.
    assert (by["B"]["approved"], by["B"]["bad"]) == (2, 1)
    assert by["B"]["bad_rate"] == pytest.approx(0.5) and by["B"]["default_rate"] == pytest.approx(0.5)
    assert by["B"]["true_pd"] == pytest.approx(0.22)
    # C: R3, a ring member without a realised default: truly bad, default rate 0.
    assert by["C"]["bad_rate"] == 1.0 and by["C"]["default_rate"] == 0.0 and by["C"]["ring_members"] == 1
    # All approvals: 2 bad (B1, R3) of 5; defaults 1 of 5; PD (0.2+0.4+0.02+0.04+0.03)/5 = 0.138.
    assert by["all"]["approved"] == 5 and by["all"]["bad"] == 2
    assert by["all"]["bad_rate"] == pytest.approx(0.4) and by["all"]["default_rate"] == pytest.approx(0.2)
    assert by["all"]["true_pd"] == pytest.approx(0.138)


def test_undecided_and_missing_grades() -> None:
    d = pl.DataFrame({"customer_id": ["G1", "G2", "R1"], "outcome": ["submitted", "approved", "approved"]})
    q = decision_quality(d, TRUTH)
    assert q["outcomes"] == {"approve": 2, "decline": 0, "refer": 0, "undecided": 1}
    assert [r["grade"] for r in q["by_grade"]] == ["(none)", "all"]
    assert q["ring"]["stopped_share"] == 0.0 and q["good"]["false_decline_rate"] == 0.0


def test_nothing_to_measure() -> None:
    q = decision_quality(
        pl.DataFrame(
            {"customer_id": [], "outcome": []}, schema={"customer_id": pl.String, "outcome": pl.String}
        ),
        TRUTH,
    )
    assert q["applications"] == 0 and q["ring"]["stopped_share"] is None
    assert q["by_grade"] == [
        {
            "grade": "all",
            "approved": 0,
            "bad": 0,
            "bad_rate": None,
            "default_rate": None,
            "true_pd": None,
            "ring_members": 0,
        }
    ]
