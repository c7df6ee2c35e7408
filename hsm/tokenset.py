"""Keys on more than one token: one facade that routes each key label to its token.

Callers keep using the :class:`~hsm.Token` API with key labels; a
:class:`TokenSet` is a Token for the default token that hands every call naming
a placed label to the token holding it. Each distinct (module, token) gets one
:class:`Token` (one logged-in session on its module's one thread); tokens on
the same module share that module's loaded library and thread, so a module is
initialised once per process however many tokens use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from hsm.config import TokenConfig
from hsm.errors import HsmConfigError, HsmError, TokenRemoved
from hsm.key_templates import KeyAlgorithm, KeyInfo
from hsm.signing import SignRequest
from hsm.token import Token
from hsm.wrapping import KekType


@dataclass(frozen=True)
class Placement:
    """Keys whose labels match ``labels`` live on the token of ``config``.

    ``name`` is how the operator named the placement (e.g. ``hsm.keys.kek``), for messages.
    """

    name: str
    labels: re.Pattern[str]
    config: TokenConfig


class TokenSet(Token):
    """The default token plus the tokens that hold placed keys; routes by key label."""

    def __init__(self, config: TokenConfig, placements: Sequence[Placement]) -> None:
        super().__init__(config)
        self._by_identity: dict[tuple[str, str | None, str | None], Token] = {config.identity: self}
        self._uses: dict[int, list[str]] = {id(self): []}
        self._routes: list[tuple[re.Pattern[str], Token]] = []
        for placement in placements:
            member = self._by_identity.get(placement.config.identity)
            if member is None:
                member = Token(placement.config)
                self._by_identity[placement.config.identity] = member
                self._uses[id(member)] = []
            elif member.config.pin != placement.config.pin:
                raise HsmConfigError(
                    f"{placement.name} names the {placement.config.describe()} with a PIN "
                    "other than the one already configured for it; give each token one PIN"
                )
            self._uses[id(member)].append(placement.name)
            self._routes.append((placement.labels, member))

    # ----- lifecycle -------------------------------------------------------------

    @classmethod
    async def connect(cls, config: TokenConfig, placements: Sequence[Placement]) -> TokenSet:
        """Log in to every token; one line naming the token and its keys on failure."""
        tokens = cls(config, placements)
        opened: list[Token] = []
        try:
            for member in tokens.members():
                await member._module.thread.run(member._connect)
                opened.append(member)
        except HsmError as exc:
            failed = member
            for done in opened:
                with contextlib.suppress(HsmError):
                    await done._module.thread.run(done._disconnect)
            raise type(exc)(tokens._with_uses(failed, exc.message)) from None
        return tokens

    @classmethod
    def connect_sync(cls, config: TokenConfig, placements: Sequence[Placement]) -> TokenSet:
        """:meth:`connect` for synchronous callers (the CLI)."""
        tokens = cls(config, placements)
        opened: list[Token] = []
        try:
            for member in tokens.members():
                member._module.thread.call(member._connect)
                opened.append(member)
        except HsmError as exc:
            failed = member
            for done in opened:
                with contextlib.suppress(HsmError):
                    done._module.thread.call(done._disconnect)
            raise type(exc)(tokens._with_uses(failed, exc.message)) from None
        return tokens

    async def close(self) -> None:
        """Close every token's session."""
        for member in self.members():
            await member._module.thread.run(member._disconnect)

    def close_sync(self) -> None:
        """Like :meth:`close`, for synchronous callers."""
        for member in self.members():
            member._module.thread.call(member._disconnect)

    # ----- routing ---------------------------------------------------------------

    def owner(self, label: str) -> Token:
        """The token holding ``label``: the first placement whose pattern matches, else default."""
        for pattern, member in self._routes:
            if pattern.fullmatch(label):
                return member
        return self

    def members(self) -> list[Token]:
        """The default token first, then each other token once."""
        return list(self._by_identity.values())

    def uses(self, member: Token) -> list[str]:
        """The placements (settings names) that put keys on ``member``."""
        return list(self._uses.get(id(member), []))

    def _with_uses(self, member: Token, message: str) -> str:
        uses = self.uses(member)
        return f"{message} (token for {', '.join(uses)})" if uses else message

    def _member(self, label: str) -> Token | None:
        """The other token holding ``label``, or None when it is on the default token."""
        owner = self.owner(label)
        return None if owner is self else owner

    # ----- routed API ------------------------------------------------------------

    async def has_key(self, label: str) -> bool:
        """True when a private or secret key with this label exists on its token."""
        other = self._member(label)
        return await (other.has_key(label) if other else super().has_key(label))

    async def generate_key(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        """Create the key on the token it is placed on."""
        other = self._member(label)
        if other:
            return await other.generate_key(label, algorithm)
        return await super().generate_key(label, algorithm)

    async def public_key(self, label: str) -> PublicKeyTypes:
        """The public half of a key pair, from its token."""
        other = self._member(label)
        return await (other.public_key(label) if other else super().public_key(label))

    async def sign(self, request: SignRequest, *, urgent: bool = False) -> bytes:
        """One signature on the token holding the key."""
        other = self._member(request.label)
        if other:
            return await other.sign(request, urgent=urgent)
        return await super().sign(request, urgent=urgent)

    async def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | HsmError]:
        """Many signatures: one batch per token, run side by side, answers in request order."""
        groups: dict[int, tuple[Token, list[int]]] = {}
        for index, request in enumerate(requests):
            owner = self.owner(request.label)
            groups.setdefault(id(owner), (owner, []))[1].append(index)
        results: list[bytes | HsmError] = [TokenRemoved("not signed")] * len(requests)

        async def run(owner: Token, indexes: list[int]) -> None:
            batch = [requests[i] for i in indexes]
            signer = super(TokenSet, self).sign_many if owner is self else owner.sign_many
            for index, result in zip(indexes, await signer(batch), strict=True):
                results[index] = result

        await asyncio.gather(*(run(owner, indexes) for owner, indexes in groups.values()))
        return results

    async def generate_kek(self, label: str, kek_type: KekType) -> KeyInfo:
        """Create a KEK on the token the KEK is placed on."""
        other = self._member(label)
        if other:
            return await other.generate_kek(label, kek_type)
        return await super().generate_kek(label, kek_type)

    async def kek_type(self, label: str) -> KekType:
        """The KEK's type, from its token."""
        other = self._member(label)
        return await (other.kek_type(label) if other else super().kek_type(label))

    async def wrap_data_key(self, kek_label: str, data_key: bytes) -> bytes:
        """Wrap a data key on the KEK's token."""
        other = self._member(kek_label)
        if other:
            return await other.wrap_data_key(kek_label, data_key)
        return await super().wrap_data_key(kek_label, data_key)

    async def unwrap_data_key(self, kek_label: str, wrapped: bytes) -> bytes:
        """Unwrap a data key on the KEK's token."""
        other = self._member(kek_label)
        if other:
            return await other.unwrap_data_key(kek_label, wrapped)
        return await super().unwrap_data_key(kek_label, wrapped)

    async def store_certificate(self, label: str, der: bytes, subject_der: bytes) -> None:
        """Keep the certificate on the token next to its key."""
        other = self._member(label)
        if other:
            await other.store_certificate(label, der, subject_der)
        else:
            await super().store_certificate(label, der, subject_der)

    async def certificate(self, label: str) -> bytes | None:
        """The certificate kept next to the key ``label``."""
        other = self._member(label)
        return await (other.certificate(label) if other else super().certificate(label))

    async def read_data(self, label: str) -> list[bytes]:
        """Data objects from the token the label is placed on."""
        other = self._member(label)
        return await (other.read_data(label) if other else super().read_data(label))

    async def write_data(self, label: str, value: bytes) -> None:
        """Replace data objects on the token the label is placed on."""
        other = self._member(label)
        if other:
            await other.write_data(label, value)
        else:
            await super().write_data(label, value)

    async def destroy_key(self, label: str) -> None:
        """Delete the objects labelled ``label`` on their token."""
        other = self._member(label)
        if other:
            await other.destroy_key(label)
        else:
            await super().destroy_key(label)

    def sign_sync(self, request: SignRequest) -> bytes:
        """:meth:`sign` for plain threads."""
        other = self._member(request.label)
        return other.sign_sync(request) if other else super().sign_sync(request)
