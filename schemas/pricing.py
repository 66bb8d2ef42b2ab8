"""Price model and embedding steps that carry tokens but no ``cost_usd``, with genai-prices.

There is no hand-written price table here: genai-prices maintains the catalog. A model it does not
know is *unpriced*, which the engine reports once per name; it is never counted as $0.
"""

from __future__ import annotations

from functools import lru_cache

from genai_prices import Usage, calc_price

__all__ = ["ModelPricer"]


class ModelPricer:
    """Cost in USD of one call from its tokens, or ``None`` when the model is unknown."""

    def __init__(self) -> None:
        self._unknown: set[tuple[str, str | None]] = set()

    def price(
        self,
        model: str | None,
        provider: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
    ) -> float | None:
        if not model or (input_tokens is None and output_tokens is None):
            return None
        key = (model, provider)
        if key in self._unknown:
            return None
        cached = cached_input_tokens or 0
        try:
            calc = _calc(model, provider, input_tokens or 0, output_tokens or 0, cached)
        except LookupError:
            self._unknown.add(key)
            return None
        return calc


@lru_cache(maxsize=65_536)
def _calc(model: str, provider: str | None, inp: int, out: int, cached: int) -> float:
    # genai-prices counts cache reads inside input_tokens, as OpenTelemetry does.
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=min(cached, inp) or None)
    try:
        result = calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:
        if provider is None:
            raise
        result = calc_price(usage, model_ref=model)
    return float(result.total_price)
