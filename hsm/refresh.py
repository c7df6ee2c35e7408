"""When a module may re-read its token's objects because a key label was not found.

tpm2-pkcs11 lists a token's objects when the module initialises, so a key another
process made later is "not found" until the module is initialised again. That
reinitialisation logs out every token on the module, so it is rationed: each
label at most once every ``per_label`` seconds, and the module at most once every
``gap`` seconds whatever the label (asking for many unknown labels cannot make a
storm of them). Pure bookkeeping: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFRESH_SECONDS = 5.0
"""How often one key label that is not found may make its module re-read the token."""
REFRESH_GAP_SECONDS = 1.0
"""How often a module re-reads its token at most, whatever labels are asked for."""


@dataclass
class RefreshLimiter:
    """Decides whether a missing label may cause a refresh now, and remembers that it did."""

    per_label: float = REFRESH_SECONDS
    gap: float = REFRESH_GAP_SECONDS
    _last: float | None = None
    _by_label: dict[str, float] = field(default_factory=dict)

    def allow(self, label: str, now: float) -> bool:
        """True (and recorded) when ``label`` may make the module re-read its objects at ``now``."""
        if self._last is not None and now - self._last < self.gap:
            return False
        last = self._by_label.get(label)
        if last is not None and now - last < self.per_label:
            return False
        # Only labels refreshed within the window matter: at most per_label / gap + 1 remain.
        self._by_label = {k: t for k, t in self._by_label.items() if now - t < self.per_label}
        self._by_label[label] = now
        self._last = now
        return True

    @property
    def remembered(self) -> int:
        """How many labels are remembered (bounded by ``per_label / gap + 1``)."""
        return len(self._by_label)
