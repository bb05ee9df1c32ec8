"""Feature extraction from Amazon-style bullets, with units and the bullet it came from."""

from __future__ import annotations

import pytest

from amazon_pilot.domain.features import (
    compare_features,
    extract_features,
    features_from_snapshot,
)
from amazon_pilot.domain.snapshot import Snapshot

EARBUDS_TITLE = (
    "Soundpeak Air Pro Wireless Earbuds, Hybrid Active Noise Cancelling, Bluetooth 5.3, "
    "40H Playtime, IPX5 Waterproof, Black"
)
EARBUDS = [
    "【Hybrid Active Noise Cancelling】 Feedforward and feedback mics cut ambient noise by up "
    "to 45dB, so the commute, the office and the plane all go quiet.",
    "【40H Playtime & Fast Charging】 Up to 8 hrs (32 with case) of music on a single charge. "
    "A quick 10 min charge = 2 hours of playback. USB-C and wireless charging case.",
    "【Bluetooth 5.3 & Multipoint】 Connect to two devices at once. LDAC and AAC codecs deliver "
    "Hi-Res audio; tune the EQ in the Soundpeak app.",
    "【IPX5 Sweatproof, Secure Fit】 Ergonomic design with 3 sizes of soft ear tips stays put "
    "through workouts. Each earbud weighs only 4.8g.",
    "【6 Mics for Clear Calls】 6 built-in mics with AI ENC noise reduction; 11mm dynamic "
    "drivers for deep bass.",
    "【What You Get】 Earbuds, charging case, USB-C cable, 18-month worry-free warranty. "
    "A great gift for Christmas.",
]

RIVAL = [
    "【Long Battery】 Battery lasts up to 2 days with the charging case; 6 hours per charge.",
    "【IP67 Dust and Waterproof】 Rinse them after a run.",
    "【aptX Adaptive & Bluetooth V5.2】 Low-latency game mode for mobile gaming.",
    "【Fast Charging】 Fully charges in 1.5 hours via Type-C. Weighs 0.2 oz per bud.",
    "【Hassle-free】 2-year warranty and 30-day returns.",
]

CHARGER = [
    "【65W 3-Port GaN Charger】 2 USB-C + 1 USB-A ports charge a MacBook Air, iPhone and "
    "iPad at once; 45W single-port PD fast charging.",
    "【Compact】 1.2 x 2.5 x 2.6 inches and 4.2 oz, about half the size of the original.",
    "【Power Bank Mode】 Built-in 10,000mAh battery keeps your phone going on the road.",
    "【Peace of Mind】 1-year warranty and friendly customer service.",
]


def test_earbuds_attributes_are_normalised_and_traced_to_their_bullet() -> None:
    f = extract_features("B0MAIN", EARBUDS, EARBUDS_TITLE)

    battery = f.features["battery_hours"]
    assert (battery.value, battery.unit) == (8, "h")
    assert battery.evidence.bullet_index == 1
    assert battery.evidence.text.startswith("8 hrs (32 with case")
    assert f.value("battery_total_hours") == 32

    assert f.value("anc") is True and f.value("anc_hybrid") is True
    assert f.features["anc"].evidence.bullet_index == 0
    assert f.value("anc_db") == 45

    assert f.value("fast_charge_minutes") == 10 and f.value("fast_charge_hours") == 2
    assert f.features["fast_charge"].label == "10 min = 2 h"
    assert f.value("usb_c") is True and f.value("wireless_charging") is True

    assert f.value("bluetooth_version") == 5.3
    assert f.features["bluetooth_version"].evidence.bullet_index == 2
    assert f.value("multipoint") is True and f.value("app_support") is True
    assert f.value("codec_ldac") is True and f.value("codec_aac") is True
    assert not f.has("codec_aptx")

    water = f.features["water_resistance"]
    assert water.label == "IPX5" and water.evidence.bullet_index == 3
    assert f.value("weight_grams") == 4.8

    assert f.value("microphones") == 6
    assert f.value("driver_mm") == 11
    assert f.features["driver_mm"].evidence.text == "11mm dynamic drivers"
    # ENC next to mics is call noise reduction, separate from ANC.
    assert f.features["call_noise_reduction"].evidence.bullet_index == 4

    warranty = f.features["warranty_months"]
    assert warranty.value == 18 and warranty.evidence.bullet_index == 5

    assert f.has("theme_comfort") and f.has("theme_sport_secure_fit")
    assert f.has("theme_gift") and f.has("theme_premium_sound_bass")
    assert f.has("theme_clear_calls")


def test_rival_bullets_convert_days_ounces_years() -> None:
    f = extract_features("B0RIVAL", RIVAL)
    assert f.value("battery_hours") == 6
    assert f.value("battery_total_hours") == 48  # "2 days with the charging case"
    assert f.features["battery_total_hours"].evidence.text == "2 days"
    assert f.features["water_resistance"].label == "IP67"
    assert f.value("bluetooth_version") == 5.2
    assert f.features["codec_aptx"].label == "aptX Adaptive"
    assert f.has("theme_gaming_low_latency")
    assert f.value("weight_grams") == 5.7  # 0.2 oz
    assert f.value("warranty_months") == 24
    assert f.value("usb_c") is True
    # "Fully charges in 1.5 hours" is charging time and "30-day returns" is policy.
    assert f.value("battery_hours") != 1.5
    assert all(ft.evidence.text != "30-day" for ft in f.features.values())


def test_charger_attributes() -> None:
    f = extract_features("B0CHARGER", CHARGER)
    assert f.value("wattage_w") == 65  # the highest stated output
    assert f.features["wattage_w"].evidence.bullet_index == 0
    assert f.value("ports") == 3
    assert f.value("usb_c") is True and f.value("fast_charge") is True
    assert f.value("weight_grams") == pytest.approx(119.1)
    assert f.value("dimensions_cm") == "3 x 6.3 x 6.6 cm"
    assert f.value("capacity_mah") == 10000
    assert f.value("warranty_months") == 12
    assert f.features["capacity_mah"].evidence.bullet_index == 2


@pytest.mark.parametrize(
    ("bullet", "main", "total"),
    [
        ("40H Playtime for long flights", 40, None),
        ("Enjoy 40 hours of music playback", 40, None),
        ("Up to 8 hrs (32 with case) of playtime", 8, 32),
        ("Battery lasts up to 2 days", 48, None),
        ("10 hours of playtime per charge and 40 hours in total with the charging case", 10, 40),
        ("7 hours of listening, plus 21 extra hours from the charging case", 7, 28),
        ("Total playtime 30H with the case", None, 30),
    ],
)
def test_battery_phrasings(bullet: str, main: int | None, total: int | None) -> None:
    f = extract_features("X", [bullet])
    assert f.value("battery_hours") == main
    assert f.value("battery_total_hours") == total


@pytest.mark.parametrize(
    "bullet",
    [
        "Fully charges in 1.5 hours with the included cable",
        "Charging time: 2 hours",
        "30-day money-back guarantee",
        "Ships within 2 days",
    ],
)
def test_durations_that_are_not_battery_life(bullet: str) -> None:
    f = extract_features("X", [bullet])
    assert not f.has("battery_hours") and not f.has("battery_total_hours")


@pytest.mark.parametrize(
    ("bullet", "months"),
    [
        ("Backed by a 1-year warranty", 12),
        ("18-month worry-free warranty", 18),
        ("2 years warranty included", 24),
        ("Warranty: 6 months, replacement or refund", 6),
        ("Two-year limited warranty", 24),
    ],
)
def test_warranty_in_months(bullet: str, months: int) -> None:
    assert extract_features("X", [bullet]).value("warranty_months") == months


def test_water_resistance_ratings_are_ordered() -> None:
    ratings = ["IPX4", "IPX5", "IPX7", "IP67", "IP68"]
    levels = [extract_features("X", [f"{r} rated"]).value("water_resistance") for r in ratings]
    assert levels == sorted(levels)  # type: ignore[type-var]
    assert len(set(levels)) == len(levels)


def test_call_noise_reduction_and_negations_are_not_anc() -> None:
    f = extract_features("X", ["ENC noise cancelling mics for clear calls", "No ANC, great value"])
    assert not f.has("anc")
    assert f.has("call_noise_reduction")


def test_radio_band_is_not_a_weight() -> None:
    f = extract_features("X", ["2.4G low latency dongle for gaming; weighs just 250 g"])
    assert f.value("weight_grams") == 250


def test_weight_from_pounds_and_bluetooth_written_before_the_word() -> None:
    f = extract_features("X", ["Only 1.1 lbs", "V5.0 Bluetooth chip"])
    assert f.value("weight_grams") == pytest.approx(499.0)
    assert f.value("bluetooth_version") == 5.0


def test_title_fills_gaps_but_never_overrides_bullets() -> None:
    f = extract_features("X", ["Bluetooth 5.2 for a stable link"], "Buds, Bluetooth 5.3, IPX7")
    assert f.value("bluetooth_version") == 5.2
    assert f.features["bluetooth_version"].evidence.source == "bullet"
    water = f.features["water_resistance"]
    assert water.label == "IPX7"
    assert water.evidence.source == "title" and water.evidence.bullet_index is None


def test_features_from_snapshot_reads_bullets_and_title() -> None:
    snap = Snapshot(asin="B0S", title="Buds with LDAC", bullet_points=["IPX4 splash proof"])
    f = features_from_snapshot(snap)
    assert f.asin == "B0S" and f.has("codec_ldac") and f.has("water_resistance")


def test_evidence_span_points_into_the_original_text() -> None:
    f = extract_features("X", EARBUDS)
    for feature in f.features.values():
        ev = feature.evidence
        assert ev.bullet_index is not None
        assert EARBUDS[ev.bullet_index][ev.start : ev.end] == ev.text


def test_compare_features_lacks_only_shared_and_numeric_standing() -> None:
    main = extract_features("MAIN", EARBUDS)
    rival = extract_features("RIVAL", RIVAL)
    budget = extract_features(
        "BUDGET", ["5 hours per charge, IPX4", "Bluetooth 5.3", "USB-C charging"]
    )
    cmp = compare_features(main, [rival, budget])

    lacks = {g.name: g for g in cmp.main_lacks}
    assert lacks["codec_aptx"].holders == ("RIVAL",)
    assert lacks["codec_aptx"].labels == {"RIVAL": "aptX Adaptive"}
    assert "theme_gaming_low_latency" in lacks

    assert "anc" in cmp.main_only and "codec_ldac" in cmp.main_only
    assert "multipoint" in cmp.main_only
    assert set(cmp.shared) >= {"battery_hours", "water_resistance", "bluetooth_version", "usb_c"}

    standing = {s.name: s for s in cmp.numeric}
    assert standing["battery_hours"].position == "best"  # 8 h vs 6 h and 5 h
    assert standing["water_resistance"].position == "middle"  # IPX5 between IP67 and IPX4
    assert standing["water_resistance"].best_asins == ("RIVAL",)
    assert standing["warranty_months"].position == "worst"  # 18 vs 24 months
    assert standing["weight_grams"].position == "best"  # lighter wins: 4.8 g vs 5.7 g
    assert standing["bluetooth_version"].position == "best"
    assert standing["bluetooth_version"].best_asins == ("MAIN", "BUDGET")

    keys = cmp.metric_keys()
    assert "features.codec_aptx" in keys and "features.anc" in keys
    d = cmp.to_dict()
    assert d["main_lacks"][0]["holders"]
    assert d["metric_keys"] == keys


def test_compare_features_all_equal_is_tied() -> None:
    a = extract_features("A", ["Bluetooth 5.3"])
    b = extract_features("B", ["Bluetooth 5.3"])
    cmp = compare_features(a, [b])
    assert cmp.numeric[0].position == "tied"
    assert cmp.shared == ("bluetooth_version",)
    assert cmp.main_lacks == () and cmp.main_only == ()
