"""ctrader-typed: a typed asyncio SDK for Spotware's cTrader Open API.

Every message wrapper (``SpotEvent``, ``SymbolsListRes``, ``Trader`` ...) and every enum
(``OrderType``, ``TradeSide`` ...) is importable from here; never import ``_generated``.
"""

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._generated import enums as _enums
from ctrader_typed._generated import messages as _messages
from ctrader_typed._generated.enums import *  # noqa: F403
from ctrader_typed._generated.messages import *  # noqa: F403

__all__ = ["ProtoWrapper", "Wrapper"]
__all__ += _enums.__all__
__all__ += _messages.__all__
