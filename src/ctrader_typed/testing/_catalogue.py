"""The simulated broker's reference data: assets, asset classes, categories, symbols, leverage.

Volumes are in protocol units (0.01 of a unit: 100_000 = 1,000 units); prices quoted on the
wire are integers in 1/100000 of a price unit and always a multiple of
``10 ** (5 - digits)``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Final

from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb

__all__ = [
    "ARCHIVED_SYMBOLS",
    "ASSETS",
    "ASSET_CLASSES",
    "CATEGORIES",
    "LEVERAGES",
    "SYMBOLS",
    "AssetSpec",
    "SymbolSpec",
    "conversion_chain",
    "symbol_by_name",
    "symbol_spec",
]

WEEK_SECONDS: Final = 7 * 24 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class AssetSpec:
    asset_id: int
    name: str
    display_name: str
    digits: int

    def to_proto(self) -> model_pb.ProtoOAAsset:
        return model_pb.ProtoOAAsset(
            assetId=self.asset_id, name=self.name, displayName=self.display_name, digits=self.digits
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One tradable symbol and the parameters of its simulated price."""

    symbol_id: int
    name: str
    description: str
    base_asset_id: int
    quote_asset_id: int
    category_id: int
    digits: int
    pip_position: int
    lot_size: int
    min_volume: int
    step_volume: int
    max_volume: int
    base_price: float
    spread_points: int
    daily_volatility: float
    leverage_id: int
    measurement_units: str = ""
    sorting_number: float = 0.0

    @property
    def step(self) -> int:
        """Price increment (one point) in 1/100000 units."""
        return int(10 ** (5 - self.digits))

    def to_light(self) -> model_pb.ProtoOALightSymbol:
        return model_pb.ProtoOALightSymbol(
            symbolId=self.symbol_id,
            symbolName=self.name,
            enabled=True,
            baseAssetId=self.base_asset_id,
            quoteAssetId=self.quote_asset_id,
            symbolCategoryId=self.category_id,
            description=self.description,
            sortingNumber=self.sorting_number,
        )

    def to_full(self) -> model_pb.ProtoOASymbol:
        symbol = model_pb.ProtoOASymbol(
            symbolId=self.symbol_id,
            digits=self.digits,
            pipPosition=self.pip_position,
            enableShortSelling=True,
            guaranteedStopLoss=False,
            swapRollover3Days=model_pb.WEDNESDAY,
            swapLong=-0.65,
            swapShort=0.12,
            maxVolume=self.max_volume,
            minVolume=self.min_volume,
            stepVolume=self.step_volume,
            maxExposure=self.max_volume * 100,
            commissionType=model_pb.USD_PER_MILLION_USD,
            slDistance=0,
            tpDistance=0,
            gslDistance=0,
            gslCharge=0,
            distanceSetIn=model_pb.SYMBOL_DISTANCE_IN_POINTS,
            minCommissionType=model_pb.CURRENCY,
            minCommissionAsset="USD",
            rolloverCommission=0,
            skipRolloverDays=0,
            scheduleTimeZone="UTC",
            tradingMode=model_pb.ENABLED,
            rolloverCommission3Days=model_pb.WEDNESDAY,
            swapCalculationType=model_pb.PIPS,
            lotSize=self.lot_size,
            preciseTradingCommissionRate=COMMISSION_USD_PER_MILLION * 10**8,
            preciseMinCommission=0,
            pnlConversionFeeRate=0,
            leverageId=self.leverage_id,
            swapPeriod=24,
            swapTime=22 * 60,
            skipSWAPPeriods=0,
            chargeSwapAtWeekends=False,
        )
        # Open all week: one interval from Sunday 00:00 to the next Sunday 00:00.
        symbol.schedule.add(startSecond=0, endSecond=WEEK_SECONDS)
        if self.measurement_units:
            symbol.measurementUnits = self.measurement_units
        return symbol


COMMISSION_USD_PER_MILLION: Final = 30
"""Commission per side, in USD per million USD of notional (``USD_PER_MILLION_USD``)."""

ASSET_CLASSES: Final = (
    model_pb.ProtoOAAssetClass(id=1, name="Forex", sortingNumber=1),
    model_pb.ProtoOAAssetClass(id=2, name="Metals", sortingNumber=2),
    model_pb.ProtoOAAssetClass(id=3, name="Indices", sortingNumber=3),
    model_pb.ProtoOAAssetClass(id=4, name="Crypto", sortingNumber=4),
)

CATEGORIES: Final = (
    model_pb.ProtoOASymbolCategory(id=1, assetClassId=1, name="Majors", sortingNumber=1),
    model_pb.ProtoOASymbolCategory(id=2, assetClassId=1, name="Minors", sortingNumber=2),
    model_pb.ProtoOASymbolCategory(id=3, assetClassId=2, name="Spot metals", sortingNumber=3),
    model_pb.ProtoOASymbolCategory(id=4, assetClassId=3, name="Cash indices", sortingNumber=4),
    model_pb.ProtoOASymbolCategory(id=5, assetClassId=4, name="Cryptocurrencies", sortingNumber=5),
)

ASSETS: Final = (
    AssetSpec(1, "EUR", "Euro", 2),
    AssetSpec(2, "GBP", "British Pound", 2),
    AssetSpec(3, "JPY", "Japanese Yen", 0),
    AssetSpec(4, "USD", "US Dollar", 2),
    AssetSpec(5, "AUD", "Australian Dollar", 2),
    AssetSpec(6, "CHF", "Swiss Franc", 2),
    AssetSpec(7, "XAU", "Gold", 2),
    AssetSpec(8, "US500", "US 500 Index", 2),
    AssetSpec(9, "BTC", "Bitcoin", 8),
)


def _fx(
    symbol_id: int,
    name: str,
    description: str,
    base: int,
    quote: int,
    category: int,
    digits: int,
    price: float,
    spread: int,
    volatility: float,
) -> SymbolSpec:
    """A currency pair: 1 lot = 100,000 units, 1,000 units minimum and step."""
    return SymbolSpec(
        symbol_id, name, description, base, quote, category, digits, digits - 1, lot_size=10_000_000,
        min_volume=100_000, step_volume=100_000, max_volume=10_000_000_000, base_price=price,
        spread_points=spread, daily_volatility=volatility, leverage_id=1, sorting_number=symbol_id,
    )  # fmt: skip


SYMBOLS: Final = (
    _fx(1, "EURUSD", "Euro vs US Dollar", 1, 4, 1, 5, 1.0850, 8, 0.005),
    _fx(2, "GBPUSD", "British Pound vs US Dollar", 2, 4, 1, 5, 1.2700, 12, 0.006),
    _fx(3, "USDJPY", "US Dollar vs Japanese Yen", 4, 3, 1, 3, 151.50, 10, 0.006),
    _fx(4, "AUDUSD", "Australian Dollar vs US Dollar", 5, 4, 1, 5, 0.6600, 10, 0.007),
    _fx(5, "USDCHF", "US Dollar vs Swiss Franc", 4, 6, 1, 5, 0.9000, 12, 0.005),
    _fx(6, "EURGBP", "Euro vs British Pound", 1, 2, 2, 5, 0.8550, 12, 0.004),
    _fx(7, "EURJPY", "Euro vs Japanese Yen", 1, 3, 2, 3, 164.40, 15, 0.006),
    SymbolSpec(8, "XAUUSD", "Gold vs US Dollar", 7, 4, 3, 2, 1, lot_size=10_000, min_volume=100, step_volume=100,
               max_volume=10_000_000, base_price=2350.00, spread_points=30, daily_volatility=0.01, leverage_id=2,
               measurement_units="oz", sorting_number=8),
    SymbolSpec(9, "US500", "US 500 Cash Index", 8, 4, 4, 2, 0, lot_size=100, min_volume=100, step_volume=100,
               max_volume=1_000_000, base_price=5200.00, spread_points=50, daily_volatility=0.01, leverage_id=3,
               measurement_units="contracts", sorting_number=9),
    SymbolSpec(10, "BTCUSD", "Bitcoin vs US Dollar", 9, 4, 5, 2, 0, lot_size=100, min_volume=1, step_volume=1,
               max_volume=10_000, base_price=65000.00, spread_points=3000, daily_volatility=0.03, leverage_id=4,
               measurement_units="BTC", sorting_number=10),
)  # fmt: skip

ARCHIVED_SYMBOLS: Final = (
    model_pb.ProtoOAArchivedSymbol(
        symbolId=101, name="USDRUB", utcLastUpdateTimestamp=1_646_092_800_000, description="Trading halted"
    ),
)

LEVERAGES: Final = {
    1: ((500_000_000, 500), (2_000_000_000, 200), (10_000_000_000, 100)),
    2: ((100_000_000, 100), (500_000_000, 50)),
    3: ((100_000_000, 50), (500_000_000, 20)),
    4: ((10_000_000, 10), (50_000_000, 5)),
}
"""leverageId -> tiers of (max USD volume in cents, leverage)."""

_BY_ID: Final = {s.symbol_id: s for s in SYMBOLS}
_BY_NAME: Final = {s.name: s for s in SYMBOLS}


def symbol_by_name(name: str) -> SymbolSpec:
    return _BY_NAME[name]


def conversion_chain(first_asset_id: int, last_asset_id: int) -> list[SymbolSpec]:
    """Shortest chain of symbols linking two assets (breadth-first over base/quote pairs)."""
    if first_asset_id == last_asset_id:
        return []
    previous: dict[int, tuple[int, SymbolSpec] | None] = {first_asset_id: None}
    queue = deque([first_asset_id])
    while queue:
        asset = queue.popleft()
        for spec in SYMBOLS:
            if asset not in (spec.base_asset_id, spec.quote_asset_id):
                continue
            other = spec.quote_asset_id if spec.base_asset_id == asset else spec.base_asset_id
            if other in previous:
                continue
            previous[other] = (asset, spec)
            if other == last_asset_id:
                chain: list[SymbolSpec] = []
                node = other
                while (step := previous[node]) is not None:
                    chain.append(step[1])
                    node = step[0]
                return chain[::-1]
            queue.append(other)
    return []


def symbol_spec(symbol_id: int) -> SymbolSpec | None:
    return _BY_ID.get(symbol_id)
