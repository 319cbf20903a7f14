"""Item encoding for prefix-tree heavy hitters: item <-> m-bit code, prefixes and OLH keys.

Privacy: this module holds no randomness and no data-dependent choice; it only fixes a
public, versioned mapping from items to bit strings (docs/heavy_hitters.md, "Items"), so it
does not affect the epsilon-LDP guarantee of the protocols that use it.

**Items** (encoding version ``hh-item-v1``)

* :class:`StringDomain` (``max_bytes`` = L, m = 8·L bits): a ``str`` is encoded as its
  UTF-8 bytes, right-padded with 0x00 to L bytes, read as a big-endian integer. Because
  the pad byte is 0x00, an item may not contain U+0000 (rejected with
  :class:`ItemEncodingError`), which makes the encoding injective: ``"a"`` and ``"a\\0"``
  cannot collide. The empty string is a valid item (all pad bytes). Strings whose UTF-8
  form is longer than L bytes are, per the ``overflow`` option, either truncated
  (default ``"truncate"``) to the longest prefix of *whole code points* that fits in L
  bytes (a multi-byte character is never split, so every code decodes back to valid
  UTF-8; grapheme clusters such as a letter plus a combining accent may be split), or
  rejected (``"reject"``). Truncation changes what "an item" is: every word sharing its
  first L bytes becomes the same item, and the ground truth must be computed on encoded
  items. No Unicode normalisation is applied; callers normalise (e.g. NFC) if they want
  canonically equivalent strings to match. Lone surrogates are rejected.
* :class:`IntegerDomain` (``bits`` = m, 1..64): an ``int`` in ``[0, 2^m)``, most
  significant bit first.

**Prefixes.** The length-ℓ prefix of an m-bit code ``c`` is the integer ``c >> (m − ℓ)``
(its ℓ most significant bits). A prefix always travels with its length.

**Keys** (version ``hh-key-v1``). OLH hashes 32-bit keys (``olh-mas-v1``), so a prefix is
mapped to a 32-bit key that *includes its length* (so '1', '01' and '001' differ):

* ℓ ≤ 32: ``key = fmix32(P xor (ℓ·0x9E3779B9 mod 2^32))`` with MurmurHash3's bijective
  finaliser. It is a bijection of the 32-bit prefixes of one length, so two distinct
  prefixes of the same length never share a key.
* ℓ > 32: a 32-bit fingerprint ``h >> 32`` where ``h`` starts at
  ``splitmix64(ℓ·φ + 0x6868)`` and absorbs the prefix's 64-bit words, least significant
  first, as ``h = splitmix64(h xor w)``. For ℓ ≤ 64 the 64-bit value is a bijection of the
  prefix; after truncation two distinct prefixes share a key with probability about
  2^-32 per pair (about 1.2·10^-4 for a 1,024-candidate level). The server checks the
  candidate set of every level for shared keys and reports them (the affected candidates
  get the same support count, i.e. an upward bias); see :func:`key_collisions`.

Only candidates of one level are ever compared with the reports of that level's group, so
keys of different lengths never need to differ, though they do in practice.

>>> d = StringDomain(max_bytes=4)
>>> hex(d.encode("hé"))
'0x68c3a900'
>>> d.decode(d.encode("hé")), d.encode("") == 0
('hé', True)
>>> d.decode(d.encode("ééé"))           # 6 bytes -> truncated to 2 whole characters
'éé'
>>> len({prefix_key(1, n) for n in (1, 2, 3)})    # '1', '01', '001' get distinct keys
3
>>> IntegerDomain(bits=8).encode(200) >> (8 - 4)   # the 4-bit prefix of 200 = 0b11001000
12
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from client_sdk.errors import ConfigError, LDPError
from client_sdk.mechanisms.olh import GOLDEN, MASK64, splitmix64, splitmix64_array

ITEM_ENCODING = "hh-item-v1"
KEY_FAMILY = "hh-key-v1"
MAX_STRING_BYTES = 32
MAX_INTEGER_BITS = 64
MASK32 = (1 << 32) - 1
_LEN_MULT32 = 0x9E3779B9
_FP_SALT = 0x6868
#: UTF-8 bytes that can never appear (C0, C1 and F5..FF)
_INVALID_UTF8 = frozenset([0xC0, 0xC1, *range(0xF5, 0x100)])


class ItemEncodingError(LDPError, ValueError):
    """An item that the configured domain cannot encode (wrong type, too long, NUL, ...)."""


# --- keys --------------------------------------------------------------------------------


def fmix32(x: int) -> int:
    """MurmurHash3's 32-bit finaliser (a bijection of [0, 2^32))."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & MASK32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & MASK32
    return x ^ (x >> 16)


def _fmix32_array(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(MASK32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(MASK32)
    return x ^ (x >> np.uint64(16))


def _n_words(length: int) -> int:
    return max(1, -(-length // 64))


def prefix_key(prefix: int, length: int) -> int:
    """The 32-bit OLH key of a length-``length`` prefix (``hh-key-v1``)."""
    prefix, length = int(prefix), int(length)
    if length < 1:
        raise ValueError(f"prefix length must be >= 1, got {length}")
    if prefix < 0 or prefix >> length:
        raise ValueError(f"prefix {prefix} does not fit in {length} bits")
    if length <= 32:
        return fmix32(prefix ^ ((length * _LEN_MULT32) & MASK32))
    h = splitmix64((length * GOLDEN + _FP_SALT) & MASK64)
    for j in range(_n_words(length)):
        h = splitmix64(h ^ ((prefix >> (64 * j)) & MASK64))
    return h >> 32


def _keys_from_words(words: np.ndarray, length: int) -> np.ndarray:
    """Keys of prefixes given as little-endian uint64 words, shape (n, n_words(length))."""
    if length <= 32:
        return _fmix32_array(words[:, 0] ^ np.uint64((length * _LEN_MULT32) & MASK32))
    h = np.full(words.shape[0], splitmix64((length * GOLDEN + _FP_SALT) & MASK64), dtype=np.uint64)
    for j in range(_n_words(length)):
        h = splitmix64_array(h ^ words[:, j])
    return h >> np.uint64(32)


def prefix_keys(prefixes: Sequence[int], length: int) -> np.ndarray:
    """Keys of many prefixes of one length (uint64 array of 32-bit values)."""
    nw = _n_words(length)
    words = np.empty((len(prefixes), nw), dtype=np.uint64)
    for i, p in enumerate(prefixes):
        p = int(p)
        if p < 0 or p >> length:
            raise ValueError(f"prefix {p} does not fit in {length} bits")
        for j in range(nw):
            words[i, j] = (p >> (64 * j)) & MASK64
    return _keys_from_words(words, length)


def key_collisions(prefixes: Sequence[int], keys: np.ndarray) -> list[tuple[int, ...]]:
    """Groups of distinct prefixes (of one level) that share a 32-bit key."""
    keys = np.asarray(keys)
    if keys.size < 2 or np.unique(keys).size == keys.size:
        return []
    groups: dict[int, list[int]] = {}
    for p, k in zip(prefixes, keys.tolist(), strict=True):
        groups.setdefault(k, []).append(p)
    return [tuple(g) for g in groups.values() if len(g) > 1]


# --- codes as word arrays ------------------------------------------------------------------


def codes_to_words(codes: Sequence[int], bits: int) -> np.ndarray:
    """Little-endian uint64 words of m-bit codes, shape (len(codes), n_words(m))."""
    nw = _n_words(bits)
    words = np.empty((len(codes), nw), dtype=np.uint64)
    for i, c in enumerate(codes):
        for j in range(nw):
            words[i, j] = (c >> (64 * j)) & MASK64
    return words


def prefix_words(words: np.ndarray, bits: int, length: int) -> np.ndarray:
    """Length-``length`` prefixes of m-bit codes given as words (vectorised shift)."""
    n, w_in = words.shape
    shift = bits - length
    q, r = divmod(shift, 64)
    nw = _n_words(length)
    out = np.zeros((n, nw), dtype=np.uint64)
    for j in range(nw):
        src = j + q
        if src < w_in:
            out[:, j] = words[:, src] >> np.uint64(r)
        if r and src + 1 < w_in:
            out[:, j] |= words[:, src + 1] << np.uint64(64 - r)
    top = length - 64 * (nw - 1)
    if top < 64:
        out[:, -1] &= np.uint64((1 << top) - 1)
    return out


def keys_of_codes(words: np.ndarray, bits: int, length: int) -> np.ndarray:
    """OLH keys of the length-``length`` prefixes of many codes (vectorised)."""
    return _keys_from_words(prefix_words(words, bits, length), length)


# --- domains -------------------------------------------------------------------------------


def parse_item(domain: Domain, text: str) -> Any:
    """An item typed as text (a command line): an integer for integer domains, else the text."""
    return int(text) if isinstance(domain, IntegerDomain) else text


class Domain:
    """An item domain: a public, versioned, injective map from items to m-bit codes."""

    bits: int

    def encode(self, item: Any) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, code: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def is_valid_code(self, code: int) -> bool:
        """True if ``code`` is a publishable item: some item encodes to it and, for strings,
        it decodes to valid text of the domain without control characters."""
        return self.is_feasible_prefix(code, self.bits)

    @property
    def level_step(self) -> int:
        """Default bits per prefix-tree level (``eta``)."""
        return 4

    def is_complete_prefix(self, prefix: int, length: int) -> bool:
        """True if the prefix already ends its item (it holds a whole pad symbol, so its
        only feasible extension is all pads): the item is ``prefix << (m − length)``."""
        return False

    def is_feasible_prefix(self, prefix: int, length: int) -> bool:
        """False only if no item's code starts with this prefix (public knowledge)."""
        return True

    @property
    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_many(self, items: Iterable[Any]) -> EncodedItems:
        """Encode a batch; identical items are encoded once."""
        index: dict[Any, int] = {}
        codes: list[int] = []
        inverse = []
        for item in items:
            key = (type(item), item)
            j = index.get(key)
            if j is None:
                j = index[key] = len(codes)
                codes.append(self.encode(item))
            inverse.append(j)
        return EncodedItems(self.bits, codes_to_words(codes, self.bits), np.asarray(inverse, dtype=np.int64))


@dataclass(frozen=True)
class EncodedItems:
    """A batch of encoded items: distinct codes as words, and each user's code index."""

    bits: int
    words: np.ndarray  # (n_distinct, n_words) uint64, little-endian words
    inverse: np.ndarray  # (n_users,) index into words

    def __len__(self) -> int:
        return int(self.inverse.shape[0])

    @classmethod
    def from_vocabulary(cls, domain: Domain, vocabulary: Sequence[Any], indices: np.ndarray) -> EncodedItems:
        """Users holding ``vocabulary[indices[u]]`` (fast path for simulations)."""
        codes = [domain.encode(v) for v in vocabulary]
        return cls(domain.bits, codes_to_words(codes, domain.bits), np.asarray(indices, dtype=np.int64))

    def keys(self, length: int) -> np.ndarray:
        """Per distinct code: the key of its length-``length`` prefix."""
        return keys_of_codes(self.words, self.bits, length)


class StringDomain(Domain):
    """UTF-8 strings of at most ``max_bytes`` bytes, 0x00-padded (see module docstring)."""

    def __init__(self, max_bytes: int, overflow: str = "truncate") -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= MAX_STRING_BYTES:
            raise ConfigError(f"max_bytes must be an integer in [1, {MAX_STRING_BYTES}], got {max_bytes!r}")
        if overflow not in ("truncate", "reject"):
            raise ConfigError(f"overflow must be 'truncate' or 'reject', got {overflow!r}")
        self.max_bytes = max_bytes
        self.overflow = overflow
        self.bits = 8 * max_bytes

    @property
    def config(self) -> dict[str, Any]:
        return {"type": "string", "max_bytes": self.max_bytes, "overflow": self.overflow, "encoding": ITEM_ENCODING}

    def to_bytes(self, item: Any) -> bytes:
        """The unpadded UTF-8 bytes an item stands for (after truncation)."""
        if not isinstance(item, str):
            raise ItemEncodingError(f"string items must be str, got {type(item).__name__}")
        if "\x00" in item:
            raise ItemEncodingError("string items may not contain U+0000 (0x00 is the pad byte)")
        try:
            raw = item.encode("utf-8")
        except UnicodeEncodeError:
            raise ItemEncodingError("string item is not valid Unicode (lone surrogate)") from None
        if len(raw) > self.max_bytes:
            if self.overflow == "reject":
                raise ItemEncodingError(
                    f"string item is {len(raw)} UTF-8 bytes long; at most {self.max_bytes} allowed (overflow='reject')"
                )
            cut = self.max_bytes
            while raw[cut] & 0xC0 == 0x80:  # raw[cut] continues a character that started before
                cut -= 1
            raw = raw[:cut]
        return raw

    def canonical(self, item: Any) -> str:
        """The item as the server will see it (truncated per the overflow rule)."""
        return self.to_bytes(item).decode("utf-8")

    def is_complete_prefix(self, prefix: int, length: int) -> bool:
        whole = length // 8
        raw = (prefix >> (length - 8 * whole)).to_bytes(whole, "big") if whole else b""
        return b"\0" in raw

    def encode(self, item: Any) -> int:
        return int.from_bytes(self.to_bytes(item).ljust(self.max_bytes, b"\0"), "big")

    def decode(self, code: int) -> str:
        """The string of a code; invalid UTF-8 (only in codes no item has) is backslash-escaped."""
        raw = int(code).to_bytes(self.max_bytes, "big").rstrip(b"\0")
        return raw.decode("utf-8", errors="backslashreplace")

    def is_feasible_prefix(self, prefix: int, length: int) -> bool:
        """False if the prefix's complete bytes cannot start a publishable item's code: a
        non-zero byte after a pad byte, a byte never used by UTF-8, a C0 control or DEL
        byte (items with control characters can be reported but are never candidates), or
        an invalid UTF-8 sequence (at full length the text must also be complete)."""
        whole = length // 8
        raw = (prefix >> (length - 8 * whole)).to_bytes(whole, "big") if whole else b""
        nul = raw.find(b"\0")
        if nul >= 0:
            if raw[nul:].strip(b"\0") or (length % 8 and prefix & ((1 << (length % 8)) - 1)):
                return False
            text, final = raw[:nul], True
        else:
            text, final = raw, length == self.bits
        if any(b in _INVALID_UTF8 or b < 0x20 or b == 0x7F for b in text):
            return False
        try:
            decoded = codecs.getincrementaldecoder("utf-8")().decode(text, final=final)
        except UnicodeDecodeError:
            return False
        return not any(0x80 <= ord(ch) <= 0x9F for ch in decoded)  # C1 controls


class IntegerDomain(Domain):
    """Integers in ``[0, 2^bits)``, most significant bit first."""

    def __init__(self, bits: int) -> None:
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_INTEGER_BITS:
            raise ConfigError(f"bits must be an integer in [1, {MAX_INTEGER_BITS}], got {bits!r}")
        self.bits = bits

    @property
    def config(self) -> dict[str, Any]:
        return {"type": "integer", "bits": self.bits, "encoding": ITEM_ENCODING}

    def encode(self, item: Any) -> int:
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ItemEncodingError(f"integer items must be int, got {type(item).__name__}")
        v = int(item)
        if not 0 <= v < 1 << self.bits:
            raise ItemEncodingError(f"integer item {v} is outside [0, 2^{self.bits})")
        return v

    def decode(self, code: int) -> int:
        return int(code)

    def encode_many(self, items: Iterable[Any]) -> EncodedItems:
        arr = np.asarray(items if isinstance(items, np.ndarray) else list(items))
        if arr.size and np.issubdtype(arr.dtype, np.integer):
            if arr.ndim != 1:
                raise ItemEncodingError("integer items must be a one-dimensional sequence")
            if arr.min() < 0 or (self.bits < 64 and int(arr.max()) >> self.bits):
                raise ItemEncodingError(f"integer items must lie in [0, 2^{self.bits})")
            uniq, inverse = np.unique(arr.astype(np.uint64), return_inverse=True)
            return EncodedItems(self.bits, uniq.reshape(-1, 1), inverse.astype(np.int64))
        return super().encode_many(arr.tolist())


#: named alphabets of :class:`AlphabetDomain` (symbol i+1 is the i-th character; 0 is the pad)
NAMED_ALPHABETS: dict[str, str] = {
    "lower": "abcdefghijklmnopqrstuvwxyz",
    "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "lower-digits": "abcdefghijklmnopqrstuvwxyz0123456789",
    "letters-digits": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "printable": "".join(chr(c) for c in range(0x20, 0x7F)),
}
#: the code points of the ``unicode`` alphabet: no C0/C1 controls, DEL, surrogates, U+FFFE/U+FFFF
UNICODE_RANGES: tuple[tuple[int, int], ...] = ((0x20, 0x7E), (0xA0, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF))
MAX_ALPHABET = 4096
MAX_CODE_BITS = 256
_UNICODE_STEP = 7


def _is_control(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in ("Cc", "Cs", "Cn") or ch in ("\ufffe", "\uffff")


class AlphabetDomain(Domain):
    """Strings over a declared alphabet, at most ``max_chars`` characters (``hh-item-v1``).

    Each character is a *symbol*: the 1-based index of the character in the alphabet (a
    named one, or an explicit list of distinct non-control characters), or for
    ``alphabet="unicode"`` the code point itself (controls, surrogates and U+FFFE/U+FFFF
    excluded). Symbol 0 is the pad. A symbol takes ``b = bitlength(A)`` bits (A = the
    largest symbol), the code is the symbols read big-endian (m = b·max_chars bits), so a
    prefix tree that steps by ``b`` bits extends by one whole character per level: about
    log2|alphabet| bits per level instead of 8 (``unicode``: 21-bit symbols, stepped by
    ``eta`` bits with pruning to valid code points). Every feasible prefix decodes to a
    valid string of the domain, so candidate expansion never produces anything else.

    On the device, before perturbation: characters outside the alphabet follow
    ``outside`` (``"reject"``: ItemEncodingError; ``"drop"``: removed), then strings longer
    than ``max_chars`` follow ``overflow`` (``"truncate"`` to the first ``max_chars``
    characters, or ``"reject"``). :meth:`canonical` gives the item the server will see.

    >>> d = AlphabetDomain("lower", 3)
    >>> d.bits, d.symbol_bits, d.encode("ab"), d.decode(d.encode("ab"))
    (15, 5, 1088, 'ab')
    >>> AlphabetDomain("lower", 3, outside="drop").canonical("A-b c!d")
    'bcd'
    """

    def __init__(self, alphabet: Any, max_chars: int, overflow: str = "truncate", outside: str = "reject") -> None:
        if isinstance(alphabet, str):
            if alphabet == "unicode":
                chars = None
            elif alphabet in NAMED_ALPHABETS:
                chars = NAMED_ALPHABETS[alphabet]
            else:
                raise ConfigError(
                    f"unknown alphabet {alphabet!r}; named: {sorted([*NAMED_ALPHABETS, 'unicode'])} or a list"
                )
        elif isinstance(alphabet, Sequence) and not isinstance(alphabet, bytes | bytearray):
            listed = list(alphabet)
            if not 1 <= len(listed) <= MAX_ALPHABET:
                raise ConfigError(f"an explicit alphabet needs 1..{MAX_ALPHABET} characters, got {len(listed)}")
            for ch in listed:
                if not isinstance(ch, str) or len(ch) != 1 or _is_control(ch):
                    raise ConfigError(f"alphabet entries must be single non-control characters, got {ch!r}")
            if len(set(listed)) != len(listed):
                raise ConfigError("alphabet characters must be distinct")
            chars = "".join(listed)
        else:
            raise ConfigError(f"alphabet must be a name or a list of characters, got {alphabet!r}")
        if overflow not in ("truncate", "reject"):
            raise ConfigError(f"overflow must be 'truncate' or 'reject', got {overflow!r}")
        if outside not in ("reject", "drop"):
            raise ConfigError(f"outside must be 'reject' or 'drop', got {outside!r}")
        self.alphabet = alphabet if isinstance(alphabet, str) else list(chars or "")
        self.chars = chars
        self.symbols = 0x10FFFF if chars is None else len(chars)
        self.symbol_bits = self.symbols.bit_length()
        limit = MAX_CODE_BITS // self.symbol_bits
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or not 1 <= max_chars <= limit:
            raise ConfigError(f"max_chars must be an integer in [1, {limit}] for this alphabet, got {max_chars!r}")
        self.max_chars = max_chars
        self.overflow = overflow
        self.outside = outside
        self.bits = self.symbol_bits * max_chars
        self._index = None if chars is None else {ch: i + 1 for i, ch in enumerate(chars)}

    @property
    def config(self) -> dict[str, Any]:
        return {
            "type": "string", "alphabet": self.alphabet, "max_chars": self.max_chars, "overflow": self.overflow,
            "outside": self.outside, "encoding": ITEM_ENCODING,
        }  # fmt: skip

    @property
    def level_step(self) -> int:
        """Bits per tree level: one whole symbol (``unicode``: 7 bits, a third of one)."""
        return _UNICODE_STEP if self.chars is None else self.symbol_bits

    def _symbol(self, ch: str) -> int | None:
        if self._index is not None:
            return self._index.get(ch)
        cp = ord(ch)
        return cp if any(lo <= cp <= hi for lo, hi in UNICODE_RANGES) else None

    def symbols_of(self, item: Any) -> list[int]:
        """The item's symbols after the ``outside`` and ``overflow`` rules (device side)."""
        if not isinstance(item, str):
            raise ItemEncodingError(f"string items must be str, got {type(item).__name__}")
        out = []
        for ch in item:
            sym = self._symbol(ch)
            if sym is None:
                if self.outside == "reject":
                    raise ItemEncodingError(f"character {ch!r} is outside the domain's alphabet (outside='reject')")
                continue
            out.append(sym)
        if len(out) > self.max_chars:
            if self.overflow == "reject":
                raise ItemEncodingError(
                    f"string item has {len(out)} characters; at most {self.max_chars} allowed (overflow='reject')"
                )
            out = out[: self.max_chars]
        return out

    def canonical(self, item: Any) -> str:
        return "".join(self._char(s) for s in self.symbols_of(item))

    def _char(self, sym: int) -> str:
        return chr(sym) if self.chars is None else self.chars[sym - 1]

    def encode(self, item: Any) -> int:
        code = 0
        syms = self.symbols_of(item)
        for j in range(self.max_chars):
            code = (code << self.symbol_bits) | (syms[j] if j < len(syms) else 0)
        return code

    def decode(self, code: int) -> str:
        """The string of a valid code (raises ItemEncodingError for an invalid one)."""
        if not self.is_valid_code(code):
            raise ItemEncodingError(f"code {code} is not a valid item of this domain")
        b, mask = self.symbol_bits, (1 << self.symbol_bits) - 1
        syms = [(int(code) >> (b * (self.max_chars - 1 - j))) & mask for j in range(self.max_chars)]
        return "".join(self._char(s) for s in syms if s)

    def is_complete_prefix(self, prefix: int, length: int) -> bool:
        b = self.symbol_bits
        mask = (1 << b) - 1
        return any(((prefix >> (length - b * (j + 1))) & mask) == 0 for j in range(length // b))

    def _symbol_range_ok(self, low: int, high: int) -> bool:
        """Some symbol (or the pad) lies in [low, high]."""
        if low == 0:
            return True
        if self.chars is not None:
            return low <= self.symbols
        return any(lo <= high and low <= hi for lo, hi in UNICODE_RANGES)

    def is_feasible_prefix(self, prefix: int, length: int) -> bool:
        """True iff some valid item's code starts with this prefix: every whole symbol is a
        symbol of the alphabet or a pad followed only by pads; a partial last symbol can
        still become one."""
        b = self.symbol_bits
        whole, rest = divmod(length, b)
        mask = (1 << b) - 1
        padded = False
        for j in range(whole):
            sym = (prefix >> (length - b * (j + 1))) & mask
            if padded and sym:
                return False
            if sym == 0:
                padded = True
            elif not self._symbol_range_ok(sym, sym):
                return False
        if rest:
            part = prefix & ((1 << rest) - 1)
            if padded:
                return part == 0
            low = part << (b - rest)
            return self._symbol_range_ok(low, low | ((1 << (b - rest)) - 1))
        return True


def domain_from_config(config: Mapping[str, Any]) -> Domain:
    """Rebuild a domain from its ``config``; unknown keys are refused."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"domain must be a mapping, got {config!r}")
    enc = config.get("encoding", ITEM_ENCODING)
    if enc != ITEM_ENCODING:
        raise ConfigError(f"unknown item encoding {enc!r}; supported: {ITEM_ENCODING}")
    kind = config.get("type")
    allowed = {
        "string-bytes": {"type", "max_bytes", "overflow", "encoding"},
        "string-alphabet": {"type", "alphabet", "max_chars", "overflow", "outside", "encoding"},
        "integer": {"type", "bits", "encoding"},
    }
    flavour = ("string-alphabet" if "alphabet" in config else "string-bytes") if kind == "string" else kind
    if flavour in allowed:
        unknown = sorted(str(k) for k in config if k not in allowed[flavour])
        if unknown:
            raise ConfigError(f"unknown domain field(s) {unknown}; allowed: {sorted(allowed[flavour])}")
    try:
        if flavour == "string-alphabet":
            return AlphabetDomain(
                config["alphabet"],
                config["max_chars"],
                config.get("overflow", "truncate"),
                config.get("outside", "reject"),
            )
        if kind == "string":
            return StringDomain(config["max_bytes"], config.get("overflow", "truncate"))
        if kind == "integer":
            return IntegerDomain(config["bits"])
    except KeyError as exc:
        raise ConfigError(f"domain config lacks {exc.args[0]!r}") from None
    raise ConfigError(f"domain type must be 'string' or 'integer', got {kind!r}")


def as_domain(domain: Domain | Mapping[str, Any]) -> Domain:
    return domain if isinstance(domain, Domain) else domain_from_config(domain)


def children(prefixes: Iterable[int], step: int) -> list[int]:
    """``children(S, η) = {t·2^η + u : t in S, u in [0, 2^η)}`` in order."""
    return [(t << step) | u for t in prefixes for u in range(1 << step)]
