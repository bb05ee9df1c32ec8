"""A deterministic synthetic Amazon catalog, in the exact output format of the default actor.

`item_for(asin, marketplace, day)` is a pure function of its arguments: every product
attribute is derived from a hash of the ASIN, and every daily movement from a hash of
(ASIN, day or block of days). So the same question always gets the same answer, across
processes and machines, and a 30-day backfill shows what 30 real daily runs would:
prices drifting and sometimes jumping, BSR swinging, reviews piling up, the Buy Box
changing hands, stock-outs, products without a BSR, unknown ASINs.

Unknown products: any ASIN ending in "0000" (and anything that is not a valid ASIN) has no
page; `item_for` returns None and the stand-in server answers with the actor's not-found
item (`statusCode` 404, `statusMessage` "NOT_FOUND", `url`, `asin`).

Every item carries `"sandbox": true`, so it is labelled as sandbox data wherever it ends up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from hashlib import blake2b as _blake2b
from typing import Any

__all__ = ["CATEGORIES", "demo_asins", "item_for", "not_found_item"]

_EPOCH = date(2020, 1, 1)  # day 0 of every product's history
# Profiles kept per ASIN (≈ 2 KB each, and as much again for the static texts): enough
# for backfills and demos, which ask the same products day after day; a daily refresh
# asks each product once, so a larger cache only grows the stand-in's memory with the
# number of products (8,192 held ≈ 28 MB more of `pilot run` at 10k products than at 1k).
_CACHED_ASINS = 1024
_ASIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Rough price level of each store relative to amazon.com, and whether prices have cents.
_FX: dict[str, tuple[float, bool]] = {
    "com": (1.0, True), "ca": (1.36, True), "com.mx": (17.0, True), "com.br": (5.0, True),
    "co.uk": (0.79, True), "de": (0.92, True), "fr": (0.92, True), "it": (0.92, True),
    "es": (0.92, True), "nl": (0.92, True), "se": (10.5, False), "pl": (4.0, True),
    "com.tr": (32.0, False), "ae": (3.67, True), "sa": (3.75, True), "in": (83.0, False),
    "co.jp": (150.0, False), "com.au": (1.5, True), "sg": (1.35, True),
}  # fmt: skip


def _h(*parts: object) -> int:
    """64 stable bits from the parts (Python's hash() is salted per process, so not usable)."""
    return _hk("|".join(map(str, parts)))


def _hk(key: str) -> int:
    """`_h` of the parts already joined with "|": an item needs ≈ 30 of these, and an
    f-string key costs less than half of joining the parts (0.6 against 1.4 µs)."""
    return int.from_bytes(_blake2b(key.encode(), digest_size=8).digest(), "big")


def _unit(*parts: object) -> float:
    """Stable float in [0, 1)."""
    return _h(*parts) / 2.0**64


def _unit_k(key: str) -> float:
    """`_unit` of the parts already joined with "|"."""
    return _hk(key) / 2.0**64


# --------------------------------------------------------------------------------------------
# Localized page text


@dataclass(frozen=True, slots=True)
class _Locale:
    lang: str
    rating: str  # format with {r}
    decimal_comma: bool
    thousands: str
    bsr_name: str
    rank: str  # format with {rank}, {cat}
    top100: str  # format with {cat}
    in_stock: str
    low_stock: str  # format with {n}
    unavailable: str  # what a stock-out says (no text at all is a page without an offer)
    store: str  # format with {brand}
    reviews_name: str
    ratings_word: str
    past_sales: str


_EN = _Locale(
    lang="en", rating="{r} out of 5 stars", decimal_comma=False, thousands=",",
    bsr_name="Best Sellers Rank", rank="#{rank} in {cat}", top100="(See Top 100 in {cat})",
    in_stock="In Stock", low_stock="Only {n} left in stock - order soon.",
    unavailable="Currently unavailable.", store="Visit the {brand} Store",
    reviews_name="Customer Reviews", ratings_word="ratings",
    past_sales="{k}K+ bought in past month",
)  # fmt: skip
_DE = _Locale(
    lang="de", rating="{r} von 5 Sternen", decimal_comma=True, thousands=".",
    bsr_name="Amazon Bestseller-Rang", rank="Nr. {rank} in {cat}",
    top100="(Siehe Top 100 in {cat})", in_stock="Auf Lager", low_stock="Nur noch {n} auf Lager",
    unavailable="Derzeit nicht verfügbar.", store="Besuche den {brand}-Store",
    reviews_name="Kundenrezensionen", ratings_word="Sternebewertungen",
    past_sales="{k}K+ Mal im letzten Monat gekauft",
)  # fmt: skip
_JA = _Locale(
    lang="ja", rating="5つ星のうち{r}", decimal_comma=False, thousands=",",
    bsr_name="Amazon 売れ筋ランキング", rank="- {rank}位{cat}",
    top100="({cat}の売れ筋ランキングを見る)", in_stock="在庫あり。",
    low_stock="残り{n}点 ご注文はお早めに", unavailable="現在在庫切れです。",
    store="{brand}のストアを表示", reviews_name="カスタマーレビュー", ratings_word="個の評価",
    past_sales="過去1か月で{k}000点以上購入されました",
)  # fmt: skip
_LOCALES = {"de": _DE, "co.jp": _JA}
_AMAZON_SELLER = {
    "com": ("Amazon.com", "ATVPDKIKX0DER"), "co.uk": ("Amazon.co.uk", "A3P5ROKL5A1OLE"),
    "de": ("Amazon.de", "A3JWKAKR8XB7XF"), "co.jp": ("Amazon.co.jp", "AN1VRQENFRJN5"),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Category families


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    main: dict[str, str]  # lang -> main category
    subs: tuple[dict[str, str], ...]  # lang -> subcategory
    brands: tuple[str, ...]
    noun: str
    models: tuple[str, ...]
    price: tuple[float, float]  # USD range
    rank: tuple[int, int]  # main-category rank range
    colors: tuple[str, ...]


# Japanese store category names use the full-width ampersand.
_JA_ELECTRONICS = "家電\uff06カメラ"
_JA_HOME = "ホーム\uff06キッチン"
_FAMILIES: tuple[_Family, ...] = (
    _Family(
        name="wireless earbuds",
        main={"en": "Electronics", "de": "Elektronik & Foto", "ja": _JA_ELECTRONICS},
        subs=(
            {"en": "Earbud & In-Ear Headphones", "de": "In-Ear-Kopfhörer", "ja": "イヤホン"},
            {"en": "Bluetooth Headphones", "de": "Bluetooth-Kopfhörer", "ja": "Bluetoothイヤホン"},
            {"en": "Open-Ear Headphones", "de": "Open-Ear-Kopfhörer", "ja": "オープンイヤー型"},
        ),
        brands=("Soundcore", "JLab", "TOZO", "Sony", "Jabra", "EarFun", "Skullcandy", "Soundpeats"),
        noun="Wireless Earbuds",
        models=("P25i", "Liberty 4", "Air Pro 3", "T6", "Go Air Pop", "Free 2", "Elite 8", "Q30"),
        price=(19.0, 149.0),
        rank=(40, 40_000),
        colors=("Black", "White", "Navy Blue", "Sage Green", "Pink"),
    ),
    _Family(
        name="headphones",
        main={"en": "Electronics", "de": "Elektronik & Foto", "ja": _JA_ELECTRONICS},
        subs=(
            {"en": "Over-Ear Headphones", "de": "Over-Ear-Kopfhörer", "ja": "ヘッドホン"},
            {
                "en": "Noise-Cancelling Headphones",
                "de": "Noise-Cancelling-Kopfhörer",
                "ja": "ノイズキャンセリングヘッドホン",
            },
        ),
        brands=("Soundcore", "Sony", "Bose", "JBL", "Sennheiser", "Audio-Technica", "OneOdio"),
        noun="Over-Ear Headphones",
        models=("Q20i", "WH-CH720N", "Tune 770NC", "Space One", "ATH-M50x", "Momentum 4", "A10"),
        price=(29.0, 349.0),
        rank=(60, 60_000),
        colors=("Black", "Silver", "Midnight Blue", "Cream"),
    ),
    _Family(
        name="phone chargers",
        main={"en": "Cell Phones & Accessories", "de": "Elektronik & Foto", "ja": _JA_ELECTRONICS},
        subs=(
            {"en": "Cell Phone Wall Chargers", "de": "Ladegeräte für Handys", "ja": "充電器"},
            {"en": "USB Chargers", "de": "USB-Ladegeräte", "ja": "USB充電器"},
        ),
        brands=("Anker", "UGREEN", "Belkin", "Spigen", "INIU", "Baseus", "Amazon Basics"),
        noun="USB C Charger",
        models=("Nano II", "Nexode 65W", "BoostCharge Pro", "ArcStation", "PowerPort III"),
        price=(9.0, 69.0),
        rank=(30, 25_000),
        colors=("White", "Black", "Gray"),
    ),
    _Family(
        name="kitchen",
        main={"en": "Home & Kitchen", "de": "Küche, Haushalt & Wohnen", "ja": _JA_HOME},
        subs=(
            {"en": "Countertop Blenders", "de": "Standmixer", "ja": "ミキサー"},
            {"en": "Air Fryers", "de": "Heißluftfritteusen", "ja": "ノンフライヤー"},
            {"en": "Electric Kettles", "de": "Wasserkocher", "ja": "電気ケトル"},
        ),
        brands=("Ninja", "COSORI", "Instant", "KitchenAid", "Hamilton Beach", "Chefman"),
        noun="Kitchen Appliance",
        models=("Pro 1200", "Lite 5.8QT", "Vortex Plus", "Classic 2.0", "Smart 900"),
        price=(24.0, 199.0),
        rank=(80, 90_000),
        colors=("Black", "Stainless Steel", "White", "Red"),
    ),
    _Family(
        name="toys",
        main={"en": "Toys & Games", "de": "Spielzeug", "ja": "おもちゃ"},
        subs=(
            {"en": "Building Toys", "de": "Konstruktionsspielzeug", "ja": "ブロック"},
            {"en": "STEM Toys", "de": "MINT-Spielzeug", "ja": "知育玩具"},
        ),
        brands=("LEGO", "Melissa & Doug", "Magna-Tiles", "Hot Wheels", "Playmobil", "VTech"),
        noun="Building Set",
        models=("Creator 3in1", "Classic 100", "Explorer", "City Builder", "Space Station"),
        price=(12.0, 129.0),
        rank=(20, 70_000),
        colors=("Multicolor",),
    ),
)
# Families added later are reached only through ASINs that carry their code ("B0ZZ" + code
# letter), so every ASIN keeps the family (and the whole history) it always had.
_MARKED_FAMILIES: dict[str, _Family] = {
    "W": _Family(
        name="drinkware",
        main={
            "en": "Sports & Outdoors",
            "de": "Sport & Freizeit",
            "ja": "スポーツ\uff06アウトドア",
        },
        subs=(
            {"en": "Insulated Water Bottles", "de": "Isolierflaschen", "ja": "水筒"},
            {"en": "Sports Water Bottles", "de": "Trinkflaschen", "ja": "スポーツボトル"},
        ),
        brands=("HydroPeak", "Owala", "Hydro Flask", "Stanley", "CamelBak", "Nalgene"),
        noun="Water Bottle",
        models=("Summit", "FreeSip", "Trail", "IceFlow", "Chute Mag", "Wide Mouth"),
        price=(12.0, 49.0),
        rank=(50, 60_000),
        colors=("Black", "Sage", "Ocean Blue", "White", "Coral"),
    ),
    "R": _Family(
        name="books",
        main={"en": "Books", "de": "Bücher", "ja": "本"},
        subs=(
            {"en": "Literary Fiction", "de": "Romane", "ja": "文学"},
            {"en": "Cookbooks", "de": "Kochbücher", "ja": "料理本"},
            {"en": "Self-Help", "de": "Ratgeber", "ja": "自己啓発"},
        ),
        brands=("Vintage", "Penguin Books", "Knopf", "Harper Perennial", "Ten Speed Press"),
        noun="Paperback",
        models=(
            "The Quiet Orchard",
            "Salt and Smoke",
            "Small Habits",
            "North of Nowhere",
            "The Long Table",
            "Lanterns",
        ),
        price=(9.0, 35.0),
        rank=(100, 900_000),
        colors=("Paperback",),
    ),
    "A": _Family(
        name="apparel",
        main={"en": "Clothing, Shoes & Jewelry", "de": "Bekleidung", "ja": "ファッション"},
        subs=(
            {"en": "Men's T-Shirts", "de": "T-Shirts für Herren", "ja": "メンズTシャツ"},
            {"en": "Men's Undershirts", "de": "Unterhemden für Herren", "ja": "メンズ肌着"},
        ),
        brands=("Hanes", "Gildan", "Fruit of the Loom", "Amazon Essentials", "Champion"),
        noun="Men's Crew Neck T-Shirt",
        models=("Essentials", "ComfortSoft", "Heavyweight", "Active Tee", "Classic Fit"),
        price=(8.0, 39.0),
        rank=(30, 120_000),
        colors=("Black", "White", "Navy", "Heather Grey", "Olive"),
    ),
    "T": _Family(
        name="tools",
        main={"en": "Tools & Home Improvement", "de": "Baumarkt", "ja": "DIY・工具"},
        subs=(
            {"en": "Power Drills", "de": "Akku-Bohrschrauber", "ja": "電動ドリル"},
            {"en": "Drill Drivers", "de": "Bohrschrauber", "ja": "ドリルドライバー"},
        ),
        brands=("DEWALT", "BLACK+DECKER", "Makita", "Bosch", "RYOBI", "WORKPRO"),
        noun="Cordless Drill Driver Kit",
        models=("DCD771C2", "LDX120C", "XFD131", "GSR12V", "PCL206K", "W125"),
        price=(29.0, 199.0),
        rank=(60, 80_000),
        colors=("Yellow", "Blue", "Teal", "Orange"),
    ),
}
_MARKER = "B0ZZ"
_FAMILY_CODE = {f.name: code for code, f in _MARKED_FAMILIES.items()}
CATEGORIES: tuple[str, ...] = tuple(f.name for f in (*_FAMILIES, *_MARKED_FAMILIES.values()))
_FAMILY_BY_NAME = {f.name: f for f in (*_FAMILIES, *_MARKED_FAMILIES.values())}


def _family_of(asin: str, h: int) -> _Family:
    marked = _MARKED_FAMILIES.get(asin[4:5]) if asin.startswith(_MARKER) else None
    return marked or _FAMILIES[h % len(_FAMILIES)]


def _features(family: str, p: _Profile) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(title fragments, bullet points) with the facts a listing analysis should extract."""
    if family in ("wireless earbuds", "headphones"):
        anc = p.flags % 2 == 0
        words = [f"Bluetooth {p.bt}", f"{p.hours}H Playtime"]
        lines = [
            f"LONG BATTERY LIFE: Enjoy up to {p.hours}H playtime with the charging case; "
            "a 10-minute charge gives 2 hours of music.",
            f"STABLE CONNECTION: Bluetooth {p.bt} pairs instantly and keeps a steady link "
            "up to 15 m away.",
        ]
        if family == "wireless earbuds":
            words.append(f"IPX{p.ipx} Waterproof")
            lines.append(
                f"SWEAT & RAIN PROOF: IPX{p.ipx} waterproof rating keeps them going through "
                "workouts and downpours."
            )
        if anc:
            words.insert(0, "Active Noise Cancelling")
            lines.append(
                "ACTIVE NOISE CANCELLING: Hybrid ANC reduces ambient noise by up to 95% on "
                "planes, trains and busy streets."
            )
        box = "earbuds, charging case" if family == "wireless earbuds" else "headphones, pouch"
        lines.append(
            f"WHAT YOU GET: {box}, USB-C cable, quick start guide and a worry-free "
            f"{p.warranty}-month warranty."
        )
        return tuple(words), tuple(lines)
    if family == "phone chargers":
        watts = (20, 30, 45, 65, 100)[p.flags % 5]
        ports = 1 + p.flags % 3
        title: tuple[str, ...] = (f"{watts}W GaN Fast Charger", f"{ports}-Port USB-C", "Foldable")
        bullets: tuple[str, ...] = (
            f"FAST CHARGING: {watts}W output charges a phone to 50% in about 25 minutes.",
            f"{ports} PORTS: charge {ports} devices at once with intelligent power distribution.",
            "COMPACT GaN DESIGN: 40% smaller than a standard charger, with a foldable plug.",
            "SAFE: multi-protection against overheating, overcurrent and short circuits.",
            f"WHAT YOU GET: charger, 1.5 m USB-C cable and an {p.warranty}-month warranty.",
        )
        return title, bullets
    if family == "kitchen":
        watts = (900, 1200, 1500, 1700)[p.flags % 4]
        title = (f"{watts}W", "BPA-Free", "Dishwasher Safe Parts")
        bullets = (
            f"POWERFUL: {watts}W motor for smoothies, frozen drinks and crispy results.",
            "EASY CLEAN: BPA-free, dishwasher-safe parts; wipe the base with a damp cloth.",
            "PRESETS: 6 one-touch programs take the guesswork out of everyday cooking.",
            f"PEACE OF MIND: {p.warranty}-month warranty and responsive customer support.",
        )
        return title, bullets
    if family in _MORE_FEATURES:
        return _MORE_FEATURES[family](p)
    pieces = (250, 500, 1024, 1500)[p.flags % 4]
    age = (4, 6, 8, 12)[p.flags % 4]
    title = (f"{pieces} Pieces", f"Ages {age}+", "STEM Learning Toy")
    bullets = (
        f"{pieces} PIECES: hours of creative building with compatible, colourful bricks.",
        f"FOR AGES {age}+: builds fine motor skills, spatial reasoning and problem solving.",
        "SAFE MATERIALS: non-toxic ABS plastic with smooth edges, tested to EN71 and ASTM.",
        f"GREAT GIFT: gift-ready box and a {p.warranty}-month replacement guarantee.",
    )
    return title, bullets


_Copy = tuple[tuple[str, ...], tuple[str, ...]]
_BOTTLE_OZ = (18, 24, 32, 40, 64)
_BOTTLE_MATERIALS = ("Stainless Steel", "Tritan Plastic", "Borosilicate Glass")


def _drinkware(p: _Profile) -> _Copy:
    oz = _BOTTLE_OZ[p.flags % 5]
    material = _BOTTLE_MATERIALS[(p.flags >> 3) % 3]
    steel = material == "Stainless Steel"
    title = (f"{oz} oz", "Vacuum Insulated" if steel else "BPA-Free", "Leak Proof Lid")
    bullets = (
        f"RIGHT SIZE: holds {oz} fl oz, enough water for a long day at work or on the trail.",
        "COLD FOR HOURS: double-wall vacuum insulation keeps water icy from morning to night."
        if steel
        else f"LIGHT AND CLEAR: {material.lower()} you can see through; BPA-free and odor-free.",
        "LEAK PROOF: the locking lid seals tight, so the bottle can ride in any bag.",
        "EASY CLEAN: the wide mouth fits ice cubes and a sponge; the lid is dishwasher safe.",
    )
    return title, bullets


def _books(p: _Profile) -> _Copy:
    return (), ()  # book pages have no feature bullets; the details table is the spec


def _apparel(p: _Profile) -> _Copy:
    pack = (1, 3, 5, 6)[p.flags % 4]
    fabric = ("100% Cotton", "60% Cotton, 40% Polyester", "Cotton Blend")[(p.flags >> 2) % 3]
    title = (f"Pack of {pack}" if pack > 1 else "Single", fabric, "Regular Fit")
    bullets = (
        f"SOFT FABRIC: {fabric.lower()} jersey that keeps its shape wash after wash.",
        "TAGLESS: the neck label is printed on, so nothing scratches.",
        "EASY CARE: machine wash cold, tumble dry low.",
        f"VALUE PACK: {pack} tee{'s' if pack > 1 else ''} in one order.",
    )
    return title, bullets


def _tools(p: _Profile) -> _Copy:
    volts = (12, 18, 20)[p.flags % 3]
    rpm = (1300, 1500, 1750, 2000)[(p.flags >> 2) % 4]
    batteries = 1 + (p.flags >> 4) % 2
    title = (f"{volts}V Max", f"{rpm} RPM", f"{batteries} Batteries and Charger")
    bullets = (
        f"POWERFUL: {volts}V motor delivers up to {rpm} RPM for drilling and driving.",
        "COMPACT: lightweight design fits into tight areas.",
        "2-SPEED TRANSMISSION: high speed for drilling, low speed for driving screws.",
        f"KIT: drill, {batteries} lithium-ion batteries, charger and a carrying bag.",
    )
    return title, bullets


_MORE_FEATURES = {"drinkware": _drinkware, "books": _books, "apparel": _apparel, "tools": _tools}


def _spec_rows(p: _Profile) -> list[dict[str, str]]:
    """The product-details table of the categories that show one, as real pages word it."""
    f = p.flags
    weight_lb = 0.6 + (f % 7) * 0.35
    rows: list[tuple[str, str]]
    if p.family.name == "kitchen":
        rows = [
            ("Capacity", f"{(48, 64, 72)[f % 3]} Fluid Ounces"),
            ("Wattage", f"{(900, 1200, 1500, 1700)[f % 4]} watts"),
            ("Material", ("BPA-Free Plastic", "Glass", "Stainless Steel")[(f >> 2) % 3]),
            ("Number of Speeds", str((3, 5, 10)[(f >> 4) % 3])),
            ("Item Weight", f"{weight_lb + 6:.1f} Pounds"),
            ("Product Dimensions", f"{8 + f % 3} x {7 + f % 2} x {16 + f % 3} inches"),
        ]
    elif p.family.name == "drinkware":
        oz = _BOTTLE_OZ[f % 5]
        rows = [
            ("Capacity", f"{oz} Fluid Ounces"),
            ("Material", _BOTTLE_MATERIALS[(f >> 3) % 3]),
            ("Item Weight", f"{round(weight_lb * 16, 1)} ounces"),
            ("Product Dimensions", f"{3 + oz // 32} x {3 + oz // 32} x {8 + oz // 8} inches"),
            ("Special Feature", "Leak Proof, Dishwasher Safe Lid"),
        ]
    elif p.family.name == "books":
        pages = 180 + f * 2
        isbn = "".join(str(_hk(f"{p.asin}|isbn|{i}") % 10) for i in range(9))
        rows = [
            ("Publisher", f"{p.brand} ({p.first_available.strftime('%B %d, %Y')})"),
            ("Language", "English"),
            ("Paperback", f"{pages} pages"),
            ("ISBN-10", isbn + "X"),
            ("Item Weight", f"{round(pages * 0.035, 1)} ounces"),
            ("Dimensions", f"5.2 x {round(pages / 400, 1)} x 8 inches"),
        ]
    elif p.family.name == "apparel":
        rows = [
            (
                "Fabric Type",
                ("100% Cotton", "60% Cotton, 40% Polyester", "Cotton Blend")[(f >> 2) % 3],
            ),
            ("Care Instructions", "Machine Wash"),
            ("Origin", "Imported"),
            ("Closure Type", "Pull On"),
            ("Number of Items", str((1, 3, 5, 6)[f % 4])),
        ]
    elif p.family.name == "tools":
        rows = [
            ("Power Source", "Battery Powered"),
            ("Voltage", f"{(12, 18, 20)[f % 3]} Volts"),
            ("Maximum Rotational Speed", f"{(1300, 1500, 1750, 2000)[(f >> 2) % 4]} RPM"),
            ("Item Weight", f"{weight_lb + 2:.1f} Pounds"),
            ("Product Dimensions", f"{7 + f % 3}.5 x 3 x {8 + f % 2}.5 inches"),
            ("Material", "Plastic, Metal"),
        ]
    else:
        return []
    return [{"name": n, "value": v} for n, v in rows]


# --------------------------------------------------------------------------------------------
# Per-product profile (constant over time)


@dataclass(frozen=True, slots=True)
class _Profile:
    asin: str
    family: _Family
    brand: str
    model: str
    flags: int
    bt: str
    hours: int
    ipx: int
    warranty: int
    base_price: float  # USD
    has_list_price: bool
    base_rank: int
    volatility: float
    sub_divisors: tuple[int, ...]
    sub_indexes: tuple[int, ...]
    base_rating: float
    review_base: int
    review_rate: float
    bsr_shape: str  # "text" | "missing" | "null_details"
    brand_line: str  # "store" | "brand"
    image_count: int
    video_count: int
    colors: tuple[str, ...]
    ships_from_amazon: bool
    reseller: str
    reseller_id: str
    phase: float
    first_available: date


@lru_cache(maxsize=_CACHED_ASINS)
def _profile(asin: str) -> _Profile:
    h = _hk(f"{asin}|profile")
    family = _family_of(asin, h)
    bits = [(h >> (8 * i)) & 0xFF for i in range(8)]
    h2 = _hk(f"{asin}|profile2")
    lo, hi = family.price
    base_price = lo * (hi / lo) ** (bits[1] / 255)
    rank_lo, rank_hi = family.rank
    base_rank = int(rank_lo * (rank_hi / rank_lo) ** _unit_k(f"{asin}|rank"))
    n_subs = 1 + (h2 % 3 == 0) if len(family.subs) > 1 else 1
    first_sub = (h2 >> 8) % len(family.subs)
    sub_indexes = tuple((first_sub + i) % len(family.subs) for i in range(n_subs))
    shape_roll = (h2 >> 16) % 40
    bsr_shape = "null_details" if shape_roll == 0 else "missing" if shape_roll < 4 else "text"
    n_colors = 1 + (h2 >> 24) % min(4, len(family.colors))
    return _Profile(
        asin=asin,
        family=family,
        brand=family.brands[bits[2] % len(family.brands)],
        model=family.models[bits[3] % len(family.models)],
        flags=bits[4],
        bt=("5.0", "5.2", "5.3", "5.4")[bits[5] % 4],
        hours=(24, 30, 40, 48, 50, 60)[bits[6] % 6],
        ipx=(4, 5, 7)[bits[7] % 3],
        warranty=(12, 18, 24)[(h2 >> 32) % 3],
        base_price=base_price,
        has_list_price=(h2 >> 36) % 5 < 3,
        base_rank=base_rank,
        volatility=0.15 + 0.35 * _unit_k(f"{asin}|vol"),
        sub_divisors=tuple(8 + (_hk(f"{asin}|div|{i}") % 300) for i in range(n_subs)),
        sub_indexes=sub_indexes,
        base_rating=3.6 + 1.2 * _unit_k(f"{asin}|rating"),
        review_base=int(_hk(f"{asin}|rb") % 400),
        review_rate=0.05 + 12.0 * _unit_k(f"{asin}|rr") ** 2,
        bsr_shape=bsr_shape,
        brand_line="brand" if (h2 >> 40) % 4 == 0 else "store",
        image_count=4 + (h2 >> 44) % 5,
        video_count=(h2 >> 48) % 4,
        colors=family.colors[:n_colors],
        ships_from_amazon=(h2 >> 52) % 3 != 0,
        reseller=("TechDeals Direct", "BestValue Store", "Prime Outlet EU", "Sunrise Goods")[
            (h2 >> 54) % 4
        ],
        reseller_id="A" + _asin_tail(_hk(f"{asin}|seller"), 12),
        phase=2 * math.pi * _unit_k(f"{asin}|phase"),
        first_available=date.fromordinal(_EPOCH.toordinal() - 400 + int(h2 % 1400)),
    )


_IMAGE_HOST = "https://m.media-amazon.com"


@dataclass(frozen=True, slots=True)
class _Static:
    """The parts of a listing that never change, rendered once per ASIN."""

    title: str
    bullets: tuple[str, ...]
    images: tuple[str, ...]
    videos: tuple[str, ...]
    node: str
    model_number: str
    first_available: str
    siblings: tuple[str, ...]  # variation ASINs, this one first
    brand_seller_id: str
    review_id: str


@lru_cache(maxsize=_CACHED_ASINS)
def _static(asin: str) -> _Static:
    p = _profile(asin)
    title_bits, bullets = _features(p.family.name, p)
    n_colors = len(p.colors)
    title = f"{p.brand} {p.model} {p.family.noun}, " + ", ".join(title_bits)
    if p.family.name == "books":
        title = f"{p.model}: A Novel"
    return _Static(
        title=title,
        bullets=bullets,
        images=tuple(
            f"{_IMAGE_HOST}/images/I/{_asin_tail(_hk(f'{asin}|img|{i}'), 11)}._AC_SL1500_.jpg"
            for i in range(p.image_count)
        ),
        videos=tuple(
            f"{_IMAGE_HOST}/images/S/vse-vms/{_asin_tail(_hk(f'{asin}|vid|{i}'), 16)}.mp4"
            for i in range(p.video_count)
        ),
        node=str(_h(p.family.name) % 10**10),
        model_number=p.model.replace(" ", "-").upper(),
        first_available=p.first_available.strftime("%B %d, %Y"),
        siblings=(asin,
                  *("B0" + _asin_tail(_hk(f"{asin}|var|{i}"), 8) for i in range(1, n_colors))),
        brand_seller_id="A" + _asin_tail(_hk(f"{asin}|brandseller"), 12),
        review_id="R" + _asin_tail(_hk(f"{asin}|review"), 13),
    )


# Two base-36 digits at a time, lowest first: a dataset item asks for ≈ 15 of these
# names (images, videos, variations, sellers).
_PAIRS = tuple(a + b for b in _ASIN_CHARS for a in _ASIN_CHARS)


def _asin_tail(value: int, length: int) -> str:
    """`length` base-36 digits of `value`, lowest first."""
    out = []
    for _ in range(length >> 1):
        value, rem = divmod(value, 1296)
        out.append(_PAIRS[rem])
    if length & 1:
        out.append(_ASIN_CHARS[value % 36])
    return "".join(out)


def _is_valid_asin(asin: str) -> bool:
    if len(asin) != 10:
        return False
    if asin.startswith("B0"):
        return all(ch in _ASIN_CHARS for ch in asin)
    return asin[:9].isdigit() and (asin[9].isdigit() or asin[9] == "X")


# --------------------------------------------------------------------------------------------
# Daily state


@dataclass(slots=True)
class _Day:
    price_usd: float
    in_stock: bool
    low_stock: int | None
    rank: int
    rating: float
    reviews: int
    reseller_has_buy_box: bool
    deal: bool


def _day_state(p: _Profile, d: int) -> _Day:
    asin = p.asin
    drift = 0.04 * math.sin(2 * math.pi * d / 29 + p.phase) + 0.02 * math.sin(d / 7 + 2 * p.phase)
    price = p.base_price * (1 + drift)
    block = d // 3
    jump_roll = _hk(f"{asin}|jump|{block}")
    deal = False
    if jump_roll % 8 == 0:  # about one 3-day block in 8: a promo or a price hike
        size = 0.15 + 0.10 * ((jump_roll >> 8) % 1000) / 1000
        down = (jump_roll >> 20) % 3 != 0
        price *= (1 - size) if down else (1 + size)
        deal = down
    in_stock = _hk(f"{asin}|oos|{d // 2}") % 25 != 0
    low_roll = _hk(f"{asin}|low|{d}")
    low_stock = 1 + (low_roll >> 8) % 19 if in_stock and low_roll % 9 == 0 else None
    noise = ((_hk(f"{asin}|bsr|{d}") % 2001) - 1000) / 1000
    swing = 0.6 * math.sin(2 * math.pi * d / 11 + p.phase) + 0.4 * noise
    rank = p.base_rank * math.exp(p.volatility * swing) * (2.5 if not in_stock else 1.0)
    rating = p.base_rating + 0.15 * math.sin(2 * math.pi * d / 90 + p.phase)
    return _Day(
        price_usd=price,
        in_stock=in_stock,
        low_stock=low_stock,
        rank=max(1, int(rank)),
        rating=min(5.0, max(1.0, round(rating, 1))),
        reviews=max(0, p.review_base + int(p.review_rate * d)),
        reseller_has_buy_box=_hk(f"{asin}|bb|{d // 4}") % 6 == 0,
        deal=deal,
    )


# --------------------------------------------------------------------------------------------
# Item rendering


def _local_price(usd: float, marketplace: str) -> float:
    rate, cents = _FX.get(marketplace, (1.0, True))
    value = usd * rate
    if not cents:
        return float(max(1, int(round(value, -1 if value > 1000 else 0))))
    return round(max(1.0, math.floor(value) + 0.99), 2)


def _group(n: int, sep: str) -> str:
    return f"{n:,}".replace(",", sep)


def _rating_text(rating: float, loc: _Locale) -> str:
    r = f"{rating:.1f}"
    return loc.rating.format(r=r.replace(".", ",") if loc.decimal_comma else r)


def _bsr_text(p: _Profile, rank: int, loc: _Locale) -> str:
    lang = loc.lang
    main = p.family.main[lang]
    parts = [
        loc.rank.format(rank=_group(rank, loc.thousands), cat=main),
        loc.top100.format(cat=main),
    ]
    for divisor, index in zip(p.sub_divisors, p.sub_indexes, strict=True):
        sub_rank = max(1, rank // divisor)
        sub = p.family.subs[index][lang]
        parts.append(loc.rank.format(rank=_group(sub_rank, loc.thousands), cat=sub))
    return " ".join(parts)


def _product_details(p: _Profile, day: _Day, loc: _Locale,
                     spec_rows: list[dict[str, str]]) -> list[dict[str, str]] | None:
    if p.bsr_shape == "null_details":
        return None
    rating = _rating_text(day.rating, loc)
    details = [
        *spec_rows,
        {"name": "ASIN", "value": p.asin},
        {"name": "Item model number", "value": _static(p.asin).model_number},
        {"name": "Date First Available", "value": _static(p.asin).first_available},
        {"name": "Manufacturer", "value": p.brand},
        {
            "name": loc.reviews_name,
            "value": f"{rating} {_group(day.reviews, loc.thousands)} {loc.ratings_word}",
        },
    ]
    if p.bsr_shape == "text":
        details.append({"name": loc.bsr_name, "value": _bsr_text(p, day.rank, loc)})
    return details


def _seller(p: _Profile, day: _Day, marketplace: str) -> tuple[str, str, str]:
    """(soldBy, sellerId, fulfilledBy) of today's Buy Box."""
    if day.reseller_has_buy_box:
        return p.reseller, p.reseller_id, "Amazon" if p.ships_from_amazon else p.reseller
    if p.ships_from_amazon:
        name, seller_id = _AMAZON_SELLER.get(marketplace, (f"Amazon.{marketplace}", "AMAZONEU"))
        return name, seller_id, "Amazon"
    store = f"{p.brand} Official"
    return store, _static(p.asin).brand_seller_id, "Amazon"


def _locale(asin: str, marketplace: str) -> _Locale:
    loc = _LOCALES.get(marketplace)
    if loc is None or _hk(f"{asin}|english-page") % 4 == 0:  # some buyers browse in English
        return _EN
    return loc


def item_for(asin: str, marketplace: str, day: date) -> dict[str, Any] | None:
    """The actor's dataset item for this product on this day; None if the product is unknown."""
    asin = asin.strip().upper()
    if not _is_valid_asin(asin) or asin.endswith("0000"):
        return None
    p = _profile(asin)
    d = (day - _EPOCH).days
    state = _day_state(p, d)
    loc = _locale(asin, marketplace)
    url = f"https://www.amazon.{marketplace}/dp/{asin}"
    price = _local_price(state.price_usd, marketplace)
    list_price: float = _local_price(p.base_price * 1.3, marketplace) if p.has_list_price else 0
    if list_price <= price:
        list_price = 0  # the actor's "no list price"
    static = _static(asin)
    title, bullets, images = static.title, static.bullets, static.images
    node = static.node
    spec_rows = _spec_rows(p)  # in the details table, and its first two in "aboutProduct"
    item: dict[str, Any] = {
        "statusCode": 200,
        "statusMessage": "FOUND",
        "url": url,
        "asin": asin,
        "title": title,
        "manufacturer": f"Brand: {p.brand}"
        if p.brand_line == "brand"
        else loc.store.format(brand=p.brand),
        "countReview": state.reviews,
        "productRating": _rating_text(state.rating, loc),
        "shippingPrice": 0,
        "features": list(bullets),
        "imageUrlList": list(images),
        "videoeUrlList": list(static.videos),
        "mainImage": {"imageUrl": images[0], "imageResolution": "679 x 849"},
        "productDescription": f"{title}. " + " ".join(bullets[:2]),
        "productDetails": _product_details(p, state, loc, spec_rows),
        "aboutProduct": [
            {"name": "Brand", "value": p.brand},
            {"name": "Color", "value": p.colors[0]},
            *(dict(row) for row in spec_rows[:2]),
        ],
        "categoriesExtended": [
            {"name": p.family.main[loc.lang], "url": f"/b?node={node}", "node": node},
        ],
        "variations": _variations(p, price, marketplace),
        "reviews": _reviews(p, state, loc),
        "globalReviews": [],
        "reviewInsights": None,
        "used": False,
        "buyBoxUsed": None,
        "sandbox": True,
    }
    _offer_fields(item, p, state, marketplace, loc, price, list_price)
    return item


def _offer_fields(
    item: dict[str, Any],
    p: _Profile,
    state: _Day,
    marketplace: str,
    loc: _Locale,
    price: float,
    list_price: float,
) -> None:
    if not state.in_stock:  # the actor's shape of an unavailable product: no offer, says so
        item.update(
            price=0, retailPrice=0, priceSaving=None, soldBy=None, fulfilledBy=None,
            sellerId=None, warehouseAvailability=loc.unavailable, deal=False, prime=False,
            pastSales=None,
        )  # fmt: skip
        return
    sold_by, seller_id, fulfilled_by = _seller(p, state, marketplace)
    saving = f"-{round(100 * (1 - price / list_price))}%" if list_price else None
    availability = (
        loc.low_stock.format(n=state.low_stock) if state.low_stock is not None else loc.in_stock
    )
    popular = p.base_rank < 2000
    item.update(
        price=price,
        retailPrice=list_price,
        priceSaving=saving,
        soldBy=sold_by,
        fulfilledBy=fulfilled_by,
        sellerId=seller_id,
        warehouseAvailability=availability,
        deal=state.deal,
        prime=fulfilled_by == "Amazon",
        pastSales=loc.past_sales.format(k=1 + (2000 - p.base_rank) // 400) if popular else None,
    )


def _variations(p: _Profile, price: float, marketplace: str) -> list[dict[str, Any]]:
    if len(p.colors) < 2:
        return []
    values = []
    for i, (color, sibling) in enumerate(zip(p.colors, _static(p.asin).siblings, strict=True)):
        values.append(
            {
                "value": color,
                "selected": i == 0,
                "available": True,
                "price": price,
                "asin": sibling,
                "imageUrl": None,
                "dpUrl": f"/dp/{sibling}",
            }
        )
    return [{"variationName": "Color", "values": values}]


def _reviews(p: _Profile, state: _Day, loc: _Locale) -> list[dict[str, Any]]:
    if state.reviews == 0:
        return []
    stars = max(1, min(5, round(state.rating)))
    return [
        {
            "text": f"Works as described. The {p.family.noun.lower()} from {p.brand} is solid.",
            "date": "Reviewed in the United States",
            "rating": _rating_text(float(stars), loc),
            "title": "Good value",
            "userName": "Amazon Customer",
            "reviewId": _static(p.asin).review_id,
        }
    ]


def not_found_item(url: str, asin: str | None) -> dict[str, Any]:
    """The actor's item for a product page that does not exist."""
    return {
        "statusCode": 404,
        "statusMessage": "NOT_FOUND",
        "url": url,
        "asin": asin,
        "sandbox": True,
    }


def demo_asins(category: str, n: int) -> list[str]:
    """n stable, known (never "0000") ASINs of one category, e.g. "wireless earbuds"."""
    family = _FAMILY_BY_NAME.get(category.strip().lower())
    if family is None:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    found: list[str] = []
    i = 0
    code = _FAMILY_CODE.get(family.name)
    while len(found) < n:
        asin = (
            _MARKER + code + _asin_tail(_h("demo", family.name, i), 5)
            if code
            else "B0" + _asin_tail(_h("demo", family.name, i), 8)
        )
        i += 1
        if asin.endswith("0000") or _profile(asin).family is not family:
            continue
        found.append(asin)
    return found
