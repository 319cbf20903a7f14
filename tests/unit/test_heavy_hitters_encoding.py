"""Item encoding, prefixes and OLH keys of the heavy-hitter protocols."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import (
    EncodedItems,
    IntegerDomain,
    ItemEncodingError,
    StringDomain,
    codes_to_words,
    domain_from_config,
    key_collisions,
    keys_of_codes,
    prefix_key,
    prefix_keys,
)


def test_string_roundtrip_multibyte_and_empty():
    d = StringDomain(max_bytes=8)
    for s in ["", "a", "hé", "€uro", "日本", "😀x", "abcdefgh"]:
        assert d.decode(d.encode(s)) == s
    assert d.encode("") == 0
    assert d.encode("a") == 0x61 << 56
    assert hex(d.encode("hé")) == "0x68c3a90000000000"
    assert d.bits == 64


def test_encoding_is_injective_on_pad_like_inputs():
    d = StringDomain(max_bytes=4)
    codes = {d.encode(s) for s in ["", "a", "aa", "aaa", "aaaa", "b", "ab"]}
    assert len(codes) == 7
    with pytest.raises(ItemEncodingError, match="U\\+0000"):
        d.encode("a\x00")


def test_truncation_never_splits_a_character():
    d = StringDomain(max_bytes=4)
    assert d.canonical("abcdef") == "abcd"
    assert d.canonical("aééé") == "aé"  # 1 + 2 + 2 = 5 bytes > 4: the second é does not fit
    assert d.canonical("ab€") == "ab"  # € is 3 bytes
    assert d.canonical("😀") == "😀"  # exactly 4 bytes
    assert StringDomain(max_bytes=3).canonical("😀") == ""  # a 4-byte character alone truncates to ""
    for s in ["aééé", "ab€", "日本語です", "😀😀"]:
        raw = d.encode(s).to_bytes(4, "big").rstrip(b"\0")
        raw.decode("utf-8")  # always valid UTF-8


def test_overflow_reject_and_bad_items():
    d = StringDomain(max_bytes=4, overflow="reject")
    assert d.decode(d.encode("abcd")) == "abcd"
    with pytest.raises(ItemEncodingError, match="at most 4"):
        d.encode("abcde")
    with pytest.raises(ItemEncodingError, match="at most 4"):
        d.encode("aéé")  # 5 bytes
    with pytest.raises(ItemEncodingError, match="must be str"):
        d.encode(b"abc")
    with pytest.raises(ItemEncodingError, match="surrogate"):
        d.encode("a\ud800")
    with pytest.raises(ConfigError):
        StringDomain(max_bytes=0)
    with pytest.raises(ConfigError):
        StringDomain(max_bytes=4, overflow="drop")


def test_integer_domain():
    d = IntegerDomain(bits=8)
    assert d.encode(200) == 200 and d.decode(200) == 200
    for bad in (-1, 256, True, 1.5, "3"):
        with pytest.raises(ItemEncodingError):
            d.encode(bad)
    enc = d.encode_many(np.array([3, 7, 3, 255]))
    assert enc.words[enc.inverse, 0].tolist() == [3, 7, 3, 255]
    with pytest.raises(ItemEncodingError):
        d.encode_many(np.array([3, 256]))
    with pytest.raises(ConfigError):
        IntegerDomain(bits=65)
    assert domain_from_config(d.config).bits == 8
    with pytest.raises(ConfigError):
        domain_from_config({"type": "float"})


def test_prefix_keys_include_the_length():
    # a known pitfall of prefix encodings (docs/heavy_hitters.md): '1', '01' and '001' must not collide
    keys = [prefix_key(1, n) for n in (1, 2, 3)]
    assert len(set(keys)) == 3
    # pinned vectors of hh-key-v1 (a change here breaks every stored report)
    assert keys == [920564995, 314344336, 697614773]
    assert prefix_key(0x6865, 16) == 3501188662
    assert prefix_key(0x68656C6C6F00, 48) == 1478097754
    assert prefix_key((1 << 100) + 12345, 101) == 1400747962
    assert prefix_key(0, 64) == 1478590694
    with pytest.raises(ValueError):
        prefix_key(4, 2)


def test_keys_are_injective_within_a_level_up_to_32_bits():
    for length in (1, 5, 12, 16):
        keys = prefix_keys(list(range(1 << length)), length)
        assert np.unique(keys).size == 1 << length
        assert keys.max() < 1 << 32


@pytest.mark.parametrize("bits", [8, 24, 64, 128, 256])
def test_vectorised_keys_match_scalar(bits):
    rng = random.Random(bits)
    codes = [rng.getrandbits(bits) for _ in range(40)] + [0, (1 << bits) - 1]
    words = codes_to_words(codes, bits)
    for length in sorted({1, 3, 8, 31, 32, 33, 63, 64, 65, 100, bits} & set(range(1, bits + 1))):
        vec = keys_of_codes(words, bits, length)
        assert vec.tolist() == [prefix_key(c >> (bits - length), length) for c in codes]


def test_feasible_prefixes():
    d = StringDomain(max_bytes=3)
    assert d.is_feasible_prefix(0x61, 8)  # 'a'
    assert not d.is_feasible_prefix(0xFF, 8)  # never in UTF-8
    assert not d.is_feasible_prefix(0x80, 8)  # a continuation byte cannot start a string
    assert not d.is_feasible_prefix(0x0061, 16)  # pad byte then a character
    assert not d.is_feasible_prefix(0x00 << 4 | 0x1, 12)  # pad byte then non-zero bits
    assert d.is_feasible_prefix(0xC3, 8)  # lead byte of é: incomplete but valid
    assert not d.is_feasible_prefix(0xC300, 16)  # lead byte followed by pad: broken character
    assert not d.is_valid_code(0x61C300)  # a full code must be complete text
    assert d.is_valid_code(d.encode("aé"))
    assert IntegerDomain(8).is_feasible_prefix(0xFF, 8)


def test_every_prefix_of_an_encoded_item_is_feasible():
    d = StringDomain(max_bytes=6)
    rng = random.Random(3)
    alphabet = "ab é€日😀'-0"
    for _ in range(200):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        code = d.encode(s)
        for length in range(1, d.bits + 1):
            assert d.is_feasible_prefix(code >> (d.bits - length), length), (s, length)


def test_encode_many_and_vocabulary_agree():
    d = StringDomain(max_bytes=4)
    items = ["b", "a", "b", "é", "a"]
    enc = d.encode_many(items)
    vocab = EncodedItems.from_vocabulary(d, ["a", "b", "é"], np.array([1, 0, 1, 2, 0]))
    for length in (4, 8, 20, 32):
        assert enc.keys(length)[enc.inverse].tolist() == vocab.keys(length)[vocab.inverse].tolist()


def test_collision_detection(monkeypatch):
    assert key_collisions([1, 2, 3], np.array([5, 5, 7], dtype=np.uint64)) == [(1, 2)]
    assert key_collisions([1, 2], np.array([5, 6], dtype=np.uint64)) == []
    monkeypatch.setattr(C, "prefix_keys", lambda prefixes, length: np.zeros(len(prefixes), dtype=np.uint64))
    keyer = C.CandidateKeys()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keyer([10, 11], 40)
    assert keyer.collisions == [{"length": 40, "prefixes": [[10, 11]]}]
    assert any(issubclass(w.category, C.KeyCollisionWarning) for w in caught)
    keyer([10, 11], 20)  # up to 32 bits keys are injective: never checked
    assert len(keyer.collisions) == 1
