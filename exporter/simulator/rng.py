"""Deterministic randomness and identifiers derived from the seed.

Every random choice of the model is a pure function of (seed, what, index...): the model can
recompute any run's plan at any time instead of storing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_T = TypeVar("_T")


def mix64(x: int) -> int:
    """The splitmix64 finaliser: a fast, well-spread bijection on 64-bit integers."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def derive(*keys: int) -> int:
    """A 64-bit value that depends on every key."""
    state = 0
    for key in keys:
        state = mix64(((state ^ (key & _M64)) + _GOLDEN) & _M64)
    return state


class Rng:
    """A small splitmix64 generator; cheap to create for each (seed, workflow, run)."""

    __slots__ = ("_state",)

    def __init__(self, *keys: int) -> None:
        self._state = derive(*keys)

    def next64(self) -> int:
        self._state = (self._state + _GOLDEN) & _M64
        return mix64(self._state)

    def random(self) -> float:
        """A float in [0, 1)."""
        return (self.next64() >> 11) * (1.0 / (1 << 53))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def randint(self, low: int, high: int) -> int:
        """An int in [low, high], both included."""
        return low + self.next64() % (high - low + 1)

    def choice(self, items: Sequence[_T]) -> _T:
        return items[self.next64() % len(items)]

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def weighted(self, items: Sequence[tuple[_T, float]]) -> _T:
        """One of ``(item, weight)`` pairs, drawn by weight (weights summing to 1)."""
        pick = self.random()
        for item, weight in items:
            if pick < weight:
                return item
            pick -= weight
        return items[-1][0]


def uuid_from(*keys: int) -> str:
    """A version-4-shaped UUID string derived from the keys."""
    high = derive(*keys, 1)
    low = derive(*keys, 2)
    value = (high << 64) | low
    return str(uuid.UUID(int=value, version=4))


# --- run ids -------------------------------------------------------------------------------
# A run id encodes (workflow index, run number) so that any run can be found in O(1) without
# storing an id table. The low 62 bits of the UUID hold the pair, scrambled by a keyed
# bijection; the high bits hold a keyed check value so that a made-up UUID is not taken for a
# run. The version and variant bits make it look like any other v4 UUID.

_M62 = (1 << 62) - 1
_RUN_BITS = 40
_MUL1 = 0x2545F4914F6CDD1D & _M62 | 1
_MUL2 = 0x1B873593A3C5E6F7 & _M62 | 1
_INV1 = pow(_MUL1, -1, 1 << 62)
_INV2 = pow(_MUL2, -1, 1 << 62)
MAX_WORKFLOWS = 1 << (62 - _RUN_BITS)
MAX_RUN_NUMBER = (1 << _RUN_BITS) - 1


def _unshift(x: int, shift: int) -> int:
    """Invert ``x ^= x >> shift`` on 62 bits."""
    result = x
    step = shift
    while step < 62:
        result = x ^ (result >> shift)
        step += shift
    return result


class RunIdCodec:
    """Turns (workflow index, run number) into a UUID string and back."""

    def __init__(self, seed: int) -> None:
        self._key = derive(seed, 0x52554E) & _M62
        self._check_key = derive(seed, 0x434845434B)

    def encode(self, workflow: int, number: int) -> str:
        if not (0 <= workflow < MAX_WORKFLOWS and 0 < number <= MAX_RUN_NUMBER):
            raise ValueError("workflow index or run number out of range")
        payload = (workflow << _RUN_BITS) | number
        x = payload ^ self._key
        x = (x * _MUL1) & _M62
        x ^= x >> 29
        x = (x * _MUL2) & _M62
        x ^= x >> 31
        high = (mix64(payload ^ self._check_key) & ~(0xF << 12)) | (0x4 << 12)
        low = (0b10 << 62) | x
        return str(uuid.UUID(int=(high << 64) | low))

    def decode(self, text: str) -> tuple[int, int] | None:
        """The (workflow index, run number) of a run id, or None if it is not one of ours."""
        try:
            value = uuid.UUID(text).int
        except ValueError:
            return None
        high, low = value >> 64, value & _M64
        if low >> 62 != 0b10:
            return None
        x = low & _M62
        x = _unshift(x, 31)
        x = (x * _INV2) & _M62
        x = _unshift(x, 29)
        x = (x * _INV1) & _M62
        payload = x ^ self._key
        expected = (mix64(payload ^ self._check_key) & ~(0xF << 12)) | (0x4 << 12)
        if high != expected:
            return None
        number = payload & MAX_RUN_NUMBER
        if number == 0:
            return None
        return payload >> _RUN_BITS, number
