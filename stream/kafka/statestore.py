"""A write-back cache of customer states over a table of bytes.

The engine reads and assigns states through this mapping; nothing reaches the table
until `flush`, which writes each changed key once per batch (coalesced writes) and
always assigns a fresh value, never mutating one in place (Faust drops in-place
changes on recovery).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping

from rules.evaluate.state import CustomerState

ALIAS_PREFIX = "alias:"


class TableStates(MutableMapping[str, CustomerState]):
    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self.cache: dict[str, CustomerState] = {}
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        self.absent: set[str] = set()  # looked up since the last flush, and not in the table

    def __getitem__(self, key: str) -> CustomerState:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: CustomerState | None = None) -> CustomerState | None:  # type: ignore[override]
        state = self.cache.get(key)
        if state is not None:
            return state
        if key in self.deleted:
            return default
        raw = self.table.get(key)
        if raw is None:
            self.absent.add(key)
            return default
        state = CustomerState.from_bytes(raw)
        self.cache[key] = state
        return state

    def __setitem__(self, key: str, state: CustomerState) -> None:
        self.cache[key] = state
        self.dirty.add(key)
        if self.deleted:
            self.deleted.discard(key)

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self.cache.pop(key, None)
        self.dirty.discard(key)
        self.deleted.add(key)

    def pop(self, key: str, default: object = None) -> object:  # type: ignore[override]
        state = self.get(key)
        if state is None:
            return default
        del self[key]
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(set(self.table.keys()) | set(self.cache))

    def __len__(self) -> int:
        return len(set(self.table.keys()) | set(self.cache))

    def created(self) -> set[str]:
        """Keys written since the last flush that the table did not hold: every new
        state is first looked up (and missed), so no table read is needed to tell."""
        return self.dirty & self.absent

    def flush(self, write: Callable[[str, bytes | None], None]) -> int:
        """Write every changed key once (None deletes); returns how many."""
        count = 0
        cache = self.cache
        for key in self.dirty:
            write(key, cache[key].to_bytes())
            count += 1
        for key in self.deleted:
            write(key, None)
            count += 1
        self.dirty.clear()
        self.deleted.clear()
        self.absent.clear()
        if len(self.cache) > 200_000:  # bound memory; the table keeps everything
            self.cache.clear()
        return count


class TableAliases(MutableMapping[str, str]):
    """anonymous id -> customer id, stored in the same table under `alias:<id>`."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self.pending: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if key in self.pending:
            return self.pending[key]
        raw = self.table.get(ALIAS_PREFIX + key)
        return raw.decode() if raw is not None else default

    def __contains__(self, key: object) -> bool:
        return self.get(str(key)) is not None

    def __setitem__(self, key: str, value: str) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("aliases are permanent")

    def __iter__(self) -> Iterator[str]:
        return iter(self.pending)

    def __len__(self) -> int:
        return len(self.pending)

    def flush(self, write: Callable[[str, bytes | None], None]) -> int:
        for key, value in self.pending.items():
            write(ALIAS_PREFIX + key, value.encode())
        count = len(self.pending)
        self.pending.clear()
        return count
