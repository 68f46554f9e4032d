"""Measurements that follow a person's edits: after a module has run, any change of its
segments (paint, erase, undo, ...) re-runs its ``--labels`` measurement once the edits of
the next moment are in, as the tumour panel does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

DELAY_S = 0.3   # edits within this time are measured once


class AutoRemeasure:
    """Calls ``start()`` (which returns False while the job slot is busy) when
    ``fingerprint()`` of the module's segments differs from the one last measured."""

    def __init__(self, fingerprint: Callable[[], Hashable], start: Callable[[], bool],
                 delay_s: float = DELAY_S) -> None:
        self._fingerprint = fingerprint
        self._start = start
        self._delay_s = delay_s
        self._measured: Hashable | None = None
        self._armed = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        """The module has measured what the segments hold now: follow their edits."""
        self._measured = self._fingerprint()
        self._armed = True

    def disarm(self) -> None:
        """A new image (or no result yet): nothing to follow."""
        self._armed = False
        self._measured = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def request(self, *_: Any) -> None:
        """An edit happened (the segment editor's signal): measure soon, once."""
        if not self._armed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_event_loop().call_later(self._delay_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self._armed:
            return
        key = self._fingerprint()
        if key == self._measured:
            return
        if self._start():
            self._measured = key
        else:   # another job is running: try again after it
            self.request()


def segments_fingerprint(session: Any, segment_ids: Any) -> tuple:
    """A fingerprint of the segments' voxels on the image grid (None for absent ones)."""
    from mskai.slicer_io.fingerprint import mask_fingerprint
    from mskai.web.segments_io import segment_on_image

    masks = (segment_on_image(session, sid) for sid in segment_ids)
    return tuple(None if m is None else mask_fingerprint(m) for m in masks)
