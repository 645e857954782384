"""One run at a time per key, the calls that come meanwhile folded into one more run after it.

For what must reflect the latest stored state on a platform (a meeting's card, its platform event): each
run reads the state and sends it, and two runs that read in one order could reach the platform in the
other, leaving an old state shown. Serialized this way, the last run always reads after the last change,
and a burst of changes costs two runs, not one each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable


class Coalescing:
    def __init__(self) -> None:
        self._again: dict[Hashable, bool] = {}
        """Keys with a run under way, each with whether a call came since it read."""

    async def run(self, key: Hashable, action: Callable[[], Awaitable[object]]) -> None:
        """Run ``action`` now, or, if one for ``key`` is under way, have that one run it once more."""
        if key in self._again:
            self._again[key] = True
            return
        self._again[key] = False
        try:
            while True:
                await action()
                if not self._again[key]:
                    break
                self._again[key] = False
        finally:
            del self._again[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._again
