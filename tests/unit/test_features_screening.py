"""Rules skip texts that lack their words (features._NEEDS): the table must be true of
every match, or a claim would silently go unread."""

from __future__ import annotations

import random
import re

import pytest

from amazon_pilot.domain import features
from amazon_pilot.domain.features import extract_features

_PHRASES = (
    "8 hours (32 with case) playtime battery, 10 min = 2 h fast charging, PD, QC3.0, "
    "2 year warranty, guarantee of 12 months, bluetooth 5.3, BT v5.0, 5.2 bluetooth, IP67, "
    "IPX5, ANC, hybrid active noise cancelling, noise reduction, ENC, CVC8.0, 4 mics, "
    "35dB, USB-C, Type-C, wireless charging, Qi, multipoint, connect to two devices, "
    "dual-device, free app, LDAC, aptX HD, AAC, LC3plus, SBC, 12 oz, 500g, 1.5 lbs, "
    "10mm drivers, drivers of 40 mm, 20W, 5,000mAh, 3 ports, 10 x 5 x 2 cm, 32 fl oz bottle, "
    "2 cups, pack of 6, 12-pack, 4 pcs, 120V, 1,200 RPM, 5 speeds, vacuum insulated, "
    "double wall, dishwasher safe, BPA-free, made of stainless steel, comfortable, "
    "ergonomic, all-day wear, soft ear tips, no ear fatigue, pain-free, gaming, game mode, "
    "low-latency, 40 ms latency, sports, workout, running, gym, ear hooks, secure fit, "
    "sweatproof, exercising, deep bass, bass boost, hi-fi, hi-res, high fidelity, "
    "premium sound, immersive sound, gifts, birthday, christmas, father's day, mother's day, "
    "crystal-clear calls, call quality, hands-free calling, portable, compact, travelling, "
    "pocket-sized, 2 hours from 10 minutes of charging"
)


def _texts() -> list[str]:
    words = re.split(r"[ ,]+", _PHRASES)
    r = random.Random(5)
    out = [_PHRASES, _PHRASES.upper(), _PHRASES.title()]
    out += [" ".join(r.choices(words, k=r.randint(2, 30))) for _ in range(3000)]
    return out


def test_every_match_of_a_screened_rule_holds_its_words_or_a_digit() -> None:
    texts = _texts()
    for regex, needs in features._NEEDS.items():
        matched = [m.group(0).lower() for t in texts for m in regex.finditer(t)]
        assert matched, f"no example matches {regex.pattern[:60]}"
        for low in matched:
            if isinstance(needs, features._WholeToken):
                # a match begins and ends at a word boundary: its tokens are the text's
                assert any(re.fullmatch(needs[0], tok) for tok in re.findall(r"[a-z0-9]+", low)
                           ), (regex.pattern[:60], low)
                continue
            if needs is features._A_DIGIT or isinstance(needs, features._DigitAnd):
                assert re.search(r"[0-9]", low), (regex.pattern[:60], low)
            if needs is not features._A_DIGIT:
                assert any(word in low for word in needs), (regex.pattern[:60], low)


def test_the_words_are_letters_and_digits_so_each_lies_inside_one_token() -> None:
    # _Scan looks the words up in the text's [a-z0-9]+ tokens.
    for regex, needs in features._NEEDS.items():
        if needs is not features._A_DIGIT and not isinstance(needs, features._WholeToken):
            assert all(re.fullmatch(r"[a-z0-9]+", word) for word in needs), regex.pattern[:60]


def test_a_ports_claim_is_read_and_sports_does_not_run_the_ports_rule() -> None:
    for text, ports in (("4 USB-C ports", 4), ("dual-port charger", 2), ("3ports", 3),
                        ("two output ports", 2)):
        assert extract_features("B0PORTS001", [text]).features["ports"].value == ports, text
        assert features._hits_for(text) == features._hits_for(text, screen=False), text
    assert id(features.PORTS_RE) in features._Scan("Sports bottle for the gym").blocked


def test_skipping_screened_rules_and_rule_groups_finds_every_hit_running_all_finds() -> None:
    # The rule groups _hits_for leaves out must hold only screened regexes, in rule order.
    texts = _texts() + [t.replace(" ", "-") for t in _texts()[:300]]
    for text in texts:
        assert features._hits_for(text) == features._hits_for(text, screen=False), text


def test_screening_reads_the_same_claims_as_running_every_rule() -> None:
    bullets = ["IPX7 waterproof, 8 hours playtime (32 with case), bluetooth 5.3 and ANC"]
    found = extract_features("B0SCREEN01", bullets).features
    assert found["water_resistance"].label == "IPX7"
    assert found["battery_total_hours"].value == 32
    assert found["bluetooth_version"].value == 5.3
    assert "anc" in found


def test_text_beyond_ascii_is_read_by_every_rule() -> None:
    # The Kelvin sign matches "k" under IGNORECASE; lower() would not make it ASCII.
    found = extract_features("B0SCREEN02", ["Made of stainless steel, pac\u212a of 6"]).features
    assert found["item_count"].value == 6
    assert found["materials"].label == "stainless steel"


def test_skipping_flags_and_themes_a_listing_has_gives_the_features_of_reading_them_all(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # extract_features stops looking for a flag or theme once a listing has it; with
    # nothing counted as said once, every text is read for every rule.
    words = [*re.split(r"[ ,]+", _PHRASES), "no", "not", "without", "non-insulated"]
    r = random.Random(9)
    listings = []
    for _ in range(400):
        bullets = [" ".join(r.choices(words, k=r.randint(0, 25))) for _ in range(r.randint(0, 6))]
        title = " ".join(r.choices(words, k=r.randint(0, 12))) or None
        details = [(r.choice(("Special Feature", "Material", "Capacity")),
                    " ".join(r.choices(words, k=r.randint(1, 6)))) for _ in range(r.randint(0, 2))]
        listings.append((bullets, title, details))
    skipping = [extract_features("B0SETTLED1", *listing).to_dict() for listing in listings]
    monkeypatch.setattr(features, "_SAID_ONCE", frozenset())
    reading_all = [extract_features("B0SETTLED1", *listing).to_dict() for listing in listings]
    assert skipping == reading_all


def test_every_flag_and_theme_said_once_is_read_at_priority_0_and_kept_first() -> None:
    # What lets extract_features skip them: no rule gives them a priority that could
    # replace a first mention, and their specs keep the first.
    hits = [h for t in _texts() for h in features._hits_for(t) if h.name in features._SAID_ONCE]
    assert {h.name for h in hits} == features._SAID_ONCE
    assert all(h.priority == 0 for h in hits)
    assert all(features._spec(name).merge == "first" for name in features._SAID_ONCE)
