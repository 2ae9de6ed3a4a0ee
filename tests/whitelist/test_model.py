"""Pure rules of the whitelist: entry statuses, version identity, diffs, import bounds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from creditfactory.whitelist.model import (
    EntryEvent,
    EntryStatus,
    IllegalEntryTransition,
    ImportBounds,
    check_amount,
    diff_lines,
    next_status,
    sources_for,
    version_identity,
)
from tests.whitelist.conftest import lines


class TestNextStatus:
    def test_an_offer_is_applied_for_then_accepted(self) -> None:
        applied = next_status(EntryStatus.OFFERED, EntryEvent.APPLY)
        assert applied is EntryStatus.APPLIED
        assert next_status(applied, EntryEvent.ACCEPT) is EntryStatus.ACCEPTED

    def test_a_withdrawn_application_leaves_the_offer_standing(self) -> None:
        assert next_status(EntryStatus.APPLIED, EntryEvent.WITHDRAW) is EntryStatus.OFFERED

    @pytest.mark.parametrize("final", [EntryStatus.DECLINED, EntryStatus.EXITED, EntryStatus.EXPIRED])
    def test_final_statuses_allow_nothing(self, final: EntryStatus) -> None:
        for event in EntryEvent:
            with pytest.raises(IllegalEntryTransition, match="nothing"):
                next_status(final, event)

    def test_an_accepted_offer_cannot_expire_but_can_exit(self) -> None:
        with pytest.raises(IllegalEntryTransition, match="allowed: exit"):
            next_status(EntryStatus.ACCEPTED, EntryEvent.EXPIRE)
        assert next_status(EntryStatus.ACCEPTED, EntryEvent.EXIT) is EntryStatus.EXITED

    def test_sources_for_lists_every_status_an_event_leaves(self) -> None:
        assert set(sources_for(EntryEvent.EXIT)) == {
            EntryStatus.OFFERED,
            EntryStatus.APPLIED,
            EntryStatus.ACCEPTED,
        }
        assert sources_for(EntryEvent.EXPIRE) == (EntryStatus.OFFERED,)


class TestVersionIdentity:
    def base(self, **changes: object) -> str:
        args: dict[str, object] = {
            "kind": "mined",
            "name": "proactive",
            "as_of": date(2025, 6, 30),
            "strategy_hash": "s1",
            "models": {"farmer": "fs@1", "merchant": "ms@2"},
            "input_fingerprint": "i1",
        }
        args.update(changes)
        return version_identity(**args)  # type: ignore[arg-type]

    def test_the_same_inputs_give_the_same_identity_whatever_the_model_order(self) -> None:
        assert self.base() == self.base(models={"merchant": "ms@2", "farmer": "fs@1"})

    @pytest.mark.parametrize(
        "change",
        [
            {"as_of": date(2025, 7, 31)},
            {"strategy_hash": "s2"},
            {"models": {"farmer": "fs@2", "merchant": "ms@2"}},
            {"input_fingerprint": "i2"},
            {"name": "other"},
        ],
    )
    def test_any_input_changes_it(self, change: dict[str, object]) -> None:
        assert self.base(**change) != self.base()


class TestDiff:
    def test_added_removed_changed_with_reasons(self) -> None:
        old = lines(
            [
                ("C1", "eligible", "A", 50_000, 435),
                ("C2", "eligible", "B", 30_000, 565),
                ("C3", "excluded", "X_OVERDUE", None, None),
                ("C4", "eligible", "B", 20_000, 565),
                ("C5", "eligible", "A", 10_000, 435),
            ]
        )
        new = lines(
            [
                ("C1", "eligible", "A", 50_000, 435),  # unchanged
                ("C2", "excluded", "X_NEGATIVE_LIST", None, None),  # removed
                ("C3", "eligible", "C", 8_000, 720),  # added
                ("C4", "eligible", "A", 25_000, 435),  # changed
                ("C6", "eligible", "A", 5_000, 435),  # added (new customer)
            ]
        )
        d = diff_lines(old, new)
        assert d.added["customer_id"].to_list() == ["C3", "C6"]
        assert d.added["why"].to_list() == ["was excluded: X_OVERDUE", "not in the earlier version"]
        assert d.removed.rows() == [
            ("C2", "B", 3_000_000, 5_650_000, "now excluded: X_NEGATIVE_LIST"),
            ("C5", "A", 1_000_000, 4_350_000, "not in the newer version"),
        ]
        assert d.changed["customer_id"].to_list() == ["C4"]
        assert d.changed["why"].to_list() == ["grade B → A"]
        assert d.unchanged == 1
        assert d.summary == {
            "limit_added_fen": 1_300_000,
            "limit_removed_fen": 4_000_000,
            "limit_change_fen": 500_000,
        }

    def test_a_version_against_itself_changes_nothing(self) -> None:
        v = lines([("C1", "eligible", "A", 1_000, 435), ("C2", "excluded", "X", None, None)])
        d = diff_lines(v, v)
        assert (d.added.height, d.removed.height, d.changed.height, d.unchanged) == (0, 0, 0, 1)


class TestImportBounds:
    def test_limits_and_places(self) -> None:
        assert (
            check_amount(
                Decimal("5000.00"), field_name="limit", low=Decimal(1000), high=Decimal(9000), places=2
            )
            == []
        )
        assert check_amount(
            Decimal("5000.001"), field_name="limit", low=Decimal(1000), high=Decimal(9000), places=2
        ) == ["limit: 5000.001 has more than 2 decimal places"]
        assert check_amount(
            Decimal("900"), field_name="limit", low=Decimal(1000), high=Decimal(9000), places=2
        ) == ["limit: 900 is outside the product's bounds 1000–9000"]

    def test_inconsistent_bounds_are_refused(self) -> None:
        with pytest.raises(ValueError, match="min_limit"):
            ImportBounds(min_limit=Decimal(5000), max_limit=Decimal(1000))


class TestDecodeMasks:
    def test_each_fired_rule_in_order_across_both_words(self) -> None:
        import polars as pl

        from creditfactory.whitelist.model import RuleInfo, decode_masks

        rules = [
            RuleInfo(0, "age", "exclude", "X_AGE", "Age", "年龄"),
            RuleInfo(2, "kyc", "exclude", "X_KYC", "KYC", "身份"),
            RuleInfo(64, "watch", "flag", "F_THIN", "Thin file", "白户"),
        ]
        frame = pl.DataFrame({"hit_mask": [0, 1, 5, 4, 0], "hit_mask_2": [0, 0, 2, 0, None]})
        assert decode_masks(frame, rules).to_list() == [
            [],
            ["X_AGE"],
            ["X_AGE", "X_KYC", "F_THIN"],
            ["X_KYC"],
            [],
        ]
