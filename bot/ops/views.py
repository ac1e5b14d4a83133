"""What the operator API and the dashboard show, read from the ledger: status, the equity curve with
funding and fees, funding received, the next settlements, the event tail.

``LedgerViews`` lives as long as the daemon's HTTP server. It follows the ledger instead of re-reading it:
the price book, balance snapshots, fills and funding payments written since the previous request are
read by id, so a dashboard polling every few seconds costs the same on day 1 and on day 100. Money stays
Decimal (JSON strings), time epoch ms.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.domain import ZERO, PairState, spot_symbol
from bot.format import iso_utc
from bot.ledger.attribution import QUOTE, fee_usdt
from bot.ledger.models import BalanceSnapshot, Fill, FundingPayment
from bot.ledger.reads import PriceBookFollower, latest_funding_rate, read_after, select_events, symbols_of
from bot.ledger.repository import Ledger
from bot.ops.status import collect_status
from bot.ops.tail import event_json, event_summary

MAX_POINTS = 2000


@dataclass
class _Wallet:
    """One wallet's snapshots in time order: ``ts`` and ``assets`` side by side (for bisection)."""

    ts: list[int] = field(default_factory=list)
    assets: list[dict[str, Decimal]] = field(default_factory=list)

    def add(self, ts_ms: int, asset: str, total: Decimal) -> None:
        i = bisect.bisect_left(self.ts, ts_ms)
        if i < len(self.ts) and self.ts[i] == ts_ms:
            self.assets[i][asset] = total
        else:  # rows arrive by id, nearly always in time order: an append
            self.ts.insert(i, ts_ms)
            self.assets.insert(i, {asset: total})

    def at(self, ts_ms: int) -> dict[str, Decimal] | None:
        i = bisect.bisect_right(self.ts, ts_ms)
        return self.assets[i - 1] if i > 0 else None


@dataclass
class _Account:
    """One venue account's balance history, its fills and its funding payments, each in time order."""

    wallets: dict[str, _Wallet] = field(default_factory=lambda: defaultdict(_Wallet))
    instants: list[int] = field(default_factory=list)
    fills: list[Any] = field(default_factory=list)
    payments: list[Any] = field(default_factory=list)

    def add_snapshot(self, wallet: str, ts_ms: int, asset: str, total: Decimal) -> None:
        self.wallets[wallet].add(ts_ms, asset, total)
        i = bisect.bisect_left(self.instants, ts_ms)
        if i == len(self.instants) or self.instants[i] != ts_ms:
            self.instants.insert(i, ts_ms)

    @property
    def newest_ms(self) -> int:
        return self.instants[-1] if self.instants else 0

    def at(self, ts_ms: int) -> dict[str, dict[str, Decimal]]:
        """Each wallet's latest snapshot at or before ``ts_ms`` (a wallet not snapshotted yet is empty)."""
        out = {}
        for name, wallet in self.wallets.items():
            assets = wallet.at(ts_ms)
            if assets is not None:
                out[name] = assets
        return out


@dataclass
class LedgerViews:
    """The API's reads of one ledger. ``venue``: the daemon's account (None: the newest snapshotted)."""

    ledger: Ledger
    venue: str | None = None
    prices: PriceBookFollower = field(default_factory=PriceBookFollower)
    _accounts: dict[str, _Account] = field(default_factory=lambda: defaultdict(_Account))
    _last_ids: dict[str, int] = field(default_factory=lambda: {"snapshot": 0, "fill": 0, "payment": 0})

    async def refresh(self) -> None:
        """Read what was written since the last call (in batches: see ``read_after``)."""
        await self.prices.refresh(self.ledger)
        ids, led = self._last_ids, self.ledger
        b = BalanceSnapshot
        async for rows in read_after(led, b.__table__, ids["snapshot"], b.venue, b.wallet, b.asset, b.total, b.ts_ms):
            for r in rows:
                self._accounts[r.venue].add_snapshot(r.wallet.value, r.ts_ms, r.asset, r.total)
            ids["snapshot"] = rows[-1].id
        f = Fill
        async for rows in read_after(
            led, f.__table__, ids["fill"], f.venue, f.symbol, f.price, f.fee, f.fee_asset, f.ts_ms
        ):
            for r in rows:
                _insort(self._accounts[r.venue].fills, r, r.ts_ms)
            ids["fill"] = rows[-1].id
        p = FundingPayment
        async for rows in read_after(
            led,
            p.__table__,
            ids["payment"],
            p.venue,
            p.symbol,
            p.funding_time_ms,
            p.amount,
            p.asset,
            p.rate,
            p.position_size,
            p.pair_id,
        ):
            for r in rows:
                _insort(self._accounts[r.venue].payments, r, r.funding_time_ms)
            ids["payment"] = rows[-1].id

    def account(self) -> str | None:
        """The daemon's account, else the one snapshotted last (each dry run opens a new paper account)."""
        if self.venue is not None:
            return self.venue
        if not self._accounts:
            return None
        return max(self._accounts.items(), key=lambda kv: kv[1].newest_ms)[0]

    # -- status ---------------------------------------------------------------------------------------

    async def status(self, now_ms: int) -> dict[str, Any]:
        await self.refresh()
        return await collect_status(self.ledger, now_ms, prices=self.prices.book)

    async def settlements(self, symbols: list[str], now_ms: int) -> list[dict[str, Any]]:
        """The next (predicted) settlement of each symbol the bot trades, soonest first; a symbol whose
        newest rate is not a prediction in the future is listed with ``next_funding_ms`` null."""
        held = {p.symbol for p in await self.ledger.list_pairs([s for s in PairState if s is not PairState.CLOSED])}
        out = []
        for sym in symbols:
            rate = await latest_funding_rate(self.ledger, sym)
            upcoming = rate is not None and rate.kind.value == "predicted" and rate.funding_time_ms > now_ms
            out.append(
                {
                    "symbol": sym,
                    "held": sym in held,
                    "next_funding_ms": rate.funding_time_ms if upcoming and rate else None,
                    "predicted_rate": rate.rate if upcoming and rate else None,
                    "interval_hours": rate.interval_hours if rate else None,
                    "last_rate_ms": rate.funding_time_ms if rate else None,
                }
            )
        out.sort(key=lambda r: (r["next_funding_ms"] is None, r["next_funding_ms"] or 0, r["symbol"]))
        return out

    # -- equity ---------------------------------------------------------------------------------------

    async def equity_curve(self, since_ms: int | None, until_ms: int, points: int = 300) -> dict[str, Any]:
        """Equity at balance snapshots in [since, until] (at most ``points`` of them, evenly picked, the last
        always), with the funding received and the fees paid since the first point, and the PnL (equity
        change since the first point). Spot coins are valued at the price observed at or before each
        snapshot; the futures wallet at its margin balance (it holds the perp's unrealised PnL)."""
        await self.refresh()
        venue = self.account()
        account = self._accounts.get(venue) if venue is not None else None
        empty: dict[str, Any] = {
            "account": venue,
            "since_ms": since_ms,
            "until_ms": until_ms,
            "points": [],
            "unvalued": [],
        }
        if account is None:
            return empty
        lo = 0 if since_ms is None else bisect.bisect_left(account.instants, since_ms)
        instants = account.instants[lo : bisect.bisect_right(account.instants, until_ms)]
        if not instants:
            return empty
        chosen = _spread(instants, max(2, min(points, MAX_POINTS)))
        fills = account.fills[bisect.bisect_left([f.ts_ms for f in account.fills], chosen[0]) :]
        payments = [p for p in account.payments if p.funding_time_ms > chosen[0]]
        unvalued: set[str] = set()
        out = []
        first_equity: Decimal | None = None
        funding, fees = ZERO, ZERO
        fi = pi = 0
        for t in chosen:
            while pi < len(payments) and payments[pi].funding_time_ms <= t:
                funding += self._payment_usdt(payments[pi])
                pi += 1
            while fi < len(fills) and fills[fi].ts_ms <= t:
                fee = fee_usdt(fills[fi], lambda asset, ts: self.prices.book.at(f"{asset}/{QUOTE}", ts))
                fees -= fee if fee is not None else ZERO
                fi += 1
            equity = self._equity(account.at(t), t, unvalued)
            first_equity = equity if first_equity is None else first_equity
            out.append({"ts_ms": t, "equity": equity, "pnl": equity - first_equity, "funding": funding, "fees": fees})
        return {**empty, "points": out, "unvalued": sorted(unvalued)}

    def _payment_usdt(self, p: FundingPayment) -> Decimal:
        if p.asset.upper() == QUOTE:
            return p.amount
        px = self.prices.book.at(f"{p.asset}/{QUOTE}", p.funding_time_ms)
        return p.amount * px if px is not None else ZERO

    def _equity(self, wallets: dict[str, dict[str, Decimal]], ts_ms: int, unvalued: set[str]) -> Decimal:
        total = ZERO
        for assets in wallets.values():
            for asset, amount in assets.items():
                if asset.upper() == QUOTE:
                    total += amount
                elif amount != 0:
                    px = self.prices.book.at(f"{asset}/{QUOTE}", ts_ms)
                    if px is None:
                        unvalued.add(asset)
                    else:
                        total += amount * px
        return total

    # -- funding and events ---------------------------------------------------------------------------

    async def funding(self, since_ms: int | None, pair: str | None, limit: int) -> dict[str, Any]:
        """Funding payments of the daemon's account (funding time >= since), newest first, with totals."""
        await self.refresh()
        venue = self.account()
        names = set(symbols_of(pair)) if pair else None
        account = self._accounts.get(venue) if venue is not None else None
        rows = [
            p
            for p in (account.payments if account is not None else [])
            if (since_ms is None or p.funding_time_ms >= since_ms) and (names is None or p.symbol in names)
        ]
        by_symbol: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for p in rows:
            by_symbol[spot_symbol(p.symbol)] += self._payment_usdt(p)
        newest = rows[::-1][:limit]
        return {
            "account": venue,
            "since_ms": since_ms,
            "count": len(rows),
            "total": sum(by_symbol.values(), ZERO),
            "by_symbol": dict(sorted(by_symbol.items())),
            "payments": [
                {
                    "id": p.id,
                    "symbol": spot_symbol(p.symbol),
                    "funding_time_ms": p.funding_time_ms,
                    "time": iso_utc(p.funding_time_ms),
                    "amount": p.amount,
                    "asset": p.asset,
                    "rate": p.rate,
                    "position_size": p.position_size,
                    "pair_id": p.pair_id,
                }
                for p in newest
            ],
        }

    async def events(
        self,
        *,
        kinds: list[str] | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Events matching the filters: the newest ``limit`` (newest first), or with ``after_id`` the ones
        after it (oldest first, for following). ``summary`` is the ``fundbot tail`` text (decisions say why)."""
        following = after_id is not None
        rows = await select_events(
            self.ledger,
            since_ms=since_ms,
            after_id=after_id,
            kinds=kinds,
            pair_symbol=pair,
            limit=limit,
            newest_first=not following,
        )
        out = []
        for ev, sym in rows:
            item = event_json(ev, sym)
            item["summary"] = event_summary(item["kind"], ev.message, ev.details)
            out.append(item)
        last = max((e["id"] for e in out), default=after_id or 0)
        return {"events": out, "last_id": last}


def _insort(items: list[Any], row: Any, ts_ms: int) -> None:
    """Append ``row`` keeping ``items`` in time order (rows come by id, nearly always already in order)."""
    if not items or _ts(items[-1]) <= ts_ms:
        items.append(row)
    else:
        keys = [_ts(r) for r in items]
        items.insert(bisect.bisect_right(keys, ts_ms), row)


def _ts(row: Any) -> int:
    return row.ts_ms if hasattr(row, "ts_ms") else row.funding_time_ms


def _spread(items: list[int], n: int) -> list[int]:
    """At most ``n`` items evenly picked from ``items`` (sorted), always the first and the last."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return sorted({items[round(i * step)] for i in range(n)})
