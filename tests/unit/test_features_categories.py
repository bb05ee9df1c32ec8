"""Features for any category: the product-details table of real-format items (kitchen,
drinkware, books, apparel, tools) and of the stand-in catalog fills the feature matrix,
with normalized names and units."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest

from amazon_pilot.domain.features import (
    compare_features,
    extract_features,
    features_from_snapshot,
    materials,
    volume_ml,
    weight_g,
)
from amazon_pilot.domain.normalize import normalize_item
from pilot_dev.standins.apify_catalog import demo_asins, item_for

DAY = date(2025, 3, 1)


def axesso(
    asin: str,
    title: str,
    bullets: list[str],
    details: Sequence[tuple[str, str]],
    about: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """An item in the default actor's format, as its real exports look."""
    return {
        "statusCode": 200,
        "statusMessage": "FOUND",
        "url": f"https://www.amazon.com/dp/{asin}",
        "asin": asin,
        "title": title,
        "manufacturer": "Visit the Store",
        "price": 39.99,
        "retailPrice": 0,
        "productRating": "4.6 out of 5 stars",
        "countReview": 1204,
        "soldBy": "Amazon.com",
        "fulfilledBy": "Amazon",
        "warehouseAvailability": "In Stock",
        "features": bullets,
        "imageUrlList": [f"https://m.media-amazon.com/images/I/61{asin[-5:]}L._AC_SL1500_.jpg"],
        "productDetails": [{"name": n, "value": v} for n, v in details],
        "aboutProduct": [{"name": n, "value": v} for n, v in about],
        "productSpecification": [],
    }


BLENDER = axesso(
    "B0KITCHEN1",
    "Ninja Professional Plus Blender, 1400 Peak Watts, 72 oz Total Crushing Pitcher",
    ["POWERFUL: 1400-peak-watt motor crushes ice in seconds.",
     "XL CAPACITY: the 72 oz pitcher is great for making large batches for the whole family."],
    [("Capacity", "72 Fluid Ounces"), ("Wattage", "1400 watts"), ("Material", "BPA Free Plastic"),
     ("Number of Speeds", "3"), ("Item Weight", "10.4 Pounds"),
     ("Product Dimensions", "8.5\"D x 7.75\"W x 17.25\"H"), ("Best Sellers Rank",
      "#1,204 in Kitchen & Dining (See Top 100 in Kitchen & Dining) #8 in Countertop Blenders")],
    [("Brand", "Ninja"), ("Color", "Black")],
)
BOTTLE = axesso(
    "B0DRINK001",
    "Owala FreeSip Insulated Stainless Steel Water Bottle, 24 oz, BPA-Free",
    ["Keeps drinks cold for up to 24 hours thanks to double-wall vacuum insulation.",
     "Dishwasher safe lid; hand wash the cup."],
    [("Capacity", "24 Fluid Ounces"), ("Material", "18/8 Stainless Steel"),
     ("Item Weight", "0.77 Kilograms"), ("Product Dimensions", "3.3 x 3.3 x 10.6 inches")],
    [("Brand", "Owala"), ("Capacity", "709 Milliliters")],
)
BOOK = axesso(
    "0593135202",
    "Project Hail Mary: A Novel",
    [],
    [("Publisher", "Ballantine Books (May 4, 2021)"), ("Language", "English"),
     ("Hardcover", "496 pages"), ("ISBN-10", "0593135202"), ("ISBN-13", "978-0593135204"),
     ("Item Weight", "1.8 pounds"), ("Dimensions", "6.4 x 1.6 x 9.5 inches")],
)
SHIRT = axesso(
    "B0APPAREL1",
    "Hanes Men's EcoSmart Sweatshirt, Pack of 2",
    ["50% cotton, 50% polyester fleece.", "Tagless neck."],
    [("Fabric Type", "50% Cotton, 50% Polyester"), ("Care Instructions", "Machine Wash"),
     ("Origin", "Imported"), ("Closure Type", "Pull On"), ("Item Package Quantity", "2")],
)
DRILL = axesso(
    "B0TOOLS001",
    "DEWALT 20V Max Cordless Drill/Driver Kit, Compact, 1/2-Inch (DCD771C2)",
    ["High performance motor delivers 300 unit watts out (UWO) of power.",
     "High speed transmission delivers 2 speeds (0-450 & 1,500 rpm)."],
    [("Power Source", "Battery Powered"), ("Voltage", "20 Volts"),
     ("Maximum Rotational Speed", "1500 RPM"), ("Item Weight", "3.6 Pounds"),
     ("Product Dimensions", "8.25 x 3.15 x 7.75 inches"), ("Material", "Plastic, Metal"),
     ("Number of Pieces", "6")],
)


def labels(item: dict[str, Any]) -> dict[str, Any]:
    snap = normalize_item(item)
    assert snap.details_table, "the details table is kept"
    return {k: f.value for k, f in features_from_snapshot(snap).features.items()}


def test_kitchen_blender_from_its_details_table() -> None:
    f = labels(BLENDER)
    assert f["capacity_ml"] == pytest.approx(2129.3)  # 72 fl oz
    assert f["wattage_w"] == 1400 and f["speeds"] == 3
    assert f["weight_grams"] == pytest.approx(4717.4)  # 10.4 lb
    assert f["dimensions_cm"] == "21.6 x 19.7 x 43.8 cm"
    assert f["materials"] == "plastic"
    snap = normalize_item(BLENDER)
    feature = features_from_snapshot(snap).features["capacity_ml"]
    assert feature.evidence.source == "details" and feature.evidence.row_name == "Capacity"
    assert feature.label == "2129.3 ml (72 Fluid Ounces)"
    # The BSR row is not an attribute and is still read as the BSR.
    assert snap.bsr_rank == 1204 and "Best Sellers Rank" not in dict(snap.details_table)


def test_drinkware_capacity_material_and_flags() -> None:
    f = labels(BOTTLE)
    assert f["capacity_ml"] == pytest.approx(709.8)  # the table's 24 fl oz wins over the title
    assert f["materials"] == "stainless steel"
    assert f["weight_grams"] == 770
    assert f["dimensions_cm"] == "8.4 x 8.4 x 26.9 cm"
    assert f["insulated"] is True and f["dishwasher_safe"] is True and f["bpa_free"] is True
    # "cold for up to 24 hours" is not a battery.
    assert "battery_hours" not in f


def test_book_pages_format_language_without_bullets() -> None:
    f = labels(BOOK)
    assert f["pages"] == 496 and f["book_format"] == "hardcover" and f["language"] == "english"
    assert f["weight_grams"] == pytest.approx(816.5)
    assert f["dimensions_cm"] == "16.3 x 4.1 x 24.1 cm"


def test_apparel_fabric_care_and_pack() -> None:
    f = labels(SHIRT)
    assert f["materials"] == "cotton, polyester"
    assert f["care_instructions"] == "machine wash" and f["closure_type"] == "pull on"
    assert f["item_count"] == 2


def test_tools_voltage_speed_power_source() -> None:
    f = labels(DRILL)
    assert f["voltage_v"] == 20 and f["speed_rpm"] == 1500
    assert f["power_source"] == "battery powered"
    assert f["materials"] == "plastic, metal" and f["pieces"] == 6
    assert f["weight_grams"] == pytest.approx(1632.9)


def test_the_junglee_table_is_read_too() -> None:
    item = {
        "asin": "B0CWTR4K2P",
        "url": "https://www.amazon.com/dp/B0CWTR4K2P",
        "title": "HydroPeak Insulated Water Bottle",
        "brand": "HydroPeak",
        "price": {"value": 24.99, "currency": "$"},
        "stars": 4.5,
        "reviewsCount": 10,
        "inStock": True,
        "features": [],
        "attributes": [{"key": "Capacity", "value": "1 Liters"}],
        "productOverview": [{"key": "Material", "value": "Tritan"}],
        "highResolutionImages": [],
    }
    f = labels(item)
    assert f["capacity_ml"] == 1000 and f["materials"] == "tritan"


@pytest.mark.parametrize(
    ("num", "unit", "ml"),
    [("32", "Fluid Ounces", 946.4), ("32", "fl oz", 946.4), ("12", "oz", 354.9),
     ("1.5", "Liters", 1500), ("500", "Milliliters", 500), ("2", "Cups", 473.2),
     ("2", "Quarts", 1892.7), ("5", "pounds", None)],
)
def test_volume_conversions(num: str, unit: str, ml: float | None) -> None:
    assert volume_ml(num, unit) == (pytest.approx(ml) if ml is not None else None)


@pytest.mark.parametrize(
    ("num", "unit", "grams"),
    [("1.2", "Pounds", 544.3), ("8", "ounces", 226.8), ("1.1", "Kilograms", 1100),
     ("76.4", "Grams", 76.4), ("3", "lbs", 1360.8)],
)
def test_weight_conversions(num: str, unit: str, grams: float) -> None:
    assert weight_g(num, unit) == pytest.approx(grams)


def test_dimensions_materials_and_power_from_the_table() -> None:
    rows = [("Product Dimensions", "10 x 3 x 3 inches"), ("Wattage", "1.2 Kilowatts"),
            ("Material", "PC+ABS+TPU")]
    f = extract_features("B0TABLE001", [], None, rows)
    assert f.value("dimensions_cm") == "25.4 x 7.6 x 7.6 cm"
    assert f.value("wattage_w") == 1200
    assert f.value("materials") == "plastic"
    assert extract_features("B0X", [], None, [("Product Dimensions", "254 x 76 x 76 mm")]).value(
        "dimensions_cm") == "25.4 x 7.6 x 7.6 cm"
    assert materials("60% Cotton, 35% Polyester, 5% Spandex") == ["cotton", "polyester", "elastane"]


def test_bullets_alone_still_give_capacity_without_taking_a_bottle_for_a_weight() -> None:
    f = extract_features("B0BULLETS1", ["Holds 32 oz of water; the bottle weighs 14 oz."])
    assert f.value("capacity_ml") == pytest.approx(946.4)
    assert f.value("weight_grams") == pytest.approx(396.9)
    earbuds = extract_features("B0EARBUDS1", ["Each earbud weighs only 0.2 oz."])
    assert earbuds.value("weight_grams") == pytest.approx(5.7)
    assert earbuds.value("capacity_ml") is None


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("kitchen", {"capacity_ml", "wattage_w", "materials", "weight_grams", "dimensions_cm"}),
        ("drinkware", {"capacity_ml", "materials", "weight_grams", "dimensions_cm"}),
        ("books", {"pages", "book_format", "language", "weight_grams", "dimensions_cm"}),
        ("apparel", {"materials", "care_instructions", "closure_type"}),
        ("tools", {"voltage_v", "speed_rpm", "power_source", "weight_grams", "dimensions_cm"}),
    ],
)
def test_the_catalogs_feature_matrix_is_filled_for_every_category(
    category: str, expected: set[str]
) -> None:
    snaps = [normalize_item(item_for(a, "com", DAY)) for a in demo_asins(category, 5)]
    feats = [features_from_snapshot(s) for s in snaps]
    for f in feats:
        assert expected <= set(f.features), (category, f.asin, sorted(f.features))
    cmp = compare_features(feats[0], feats[1:])
    numeric = {n.name for n in cmp.numeric}
    matrix = set(cmp.shared) | numeric
    assert expected <= matrix | {g.name for g in cmp.main_lacks} | set(cmp.main_only)
    assert {"weight_grams"} & numeric or category == "apparel"


def test_the_details_table_survives_storage() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from amazon_pilot.tracking.store import SNAPSHOT_COLUMNS, snapshot_from_row, snapshot_row

    snap = normalize_item(BOTTLE)
    values = snapshot_row(1, datetime(2026, 9, 18, tzinfo=UTC), None, snap)
    row = SimpleNamespace(**dict(zip(SNAPSHOT_COLUMNS, values, strict=True)))
    back = snapshot_from_row(snap.asin, snap.marketplace, row)
    assert back.details_table == snap.details_table
    assert features_from_snapshot(back).to_dict() == features_from_snapshot(snap).to_dict()


def test_junk_details_rows_give_no_feature_and_no_error() -> None:
    rows = [("Capacity", "Large"), ("Item Weight", "Heavy"), ("Product Dimensions", "N/A"),
            ("Wattage", "0 watts"), ("Material", "Other"), ("Number of Items", "0"),
            ("Voltage", "see manual"), ("Capacity", "9" * 400 + " Fluid Ounces x" * 20),
            ("", "x"), ("Language", "")]
    f = extract_features("B0JUNK0001", [], None, rows)
    assert set(f.features) <= {"capacity_ml"}
    item = dict(BOTTLE, productDetails=[{"name": "Capacity"}, {"value": "1 L"}, "row", None,
                                        {"name": "Material", "value": {"nested": 1}}])
    snap = normalize_item(item)
    assert snap.found and snap.details_table == [("Brand", "Owala"),
                                                 ("Capacity", "709 Milliliters")]
