"""Slicer-only helper for module widgets: run a logic call with progress and Cancel.

The call runs on the GUI thread; each progress report updates the bar and processes
events, so the Cancel button stays responsive and the logic stops at its next step.
Long inference runs in a subprocess behind the logic (see DESIGN.md), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import qt
import slicer

from mskai.errors import CancelledError, InputError


class ProgressRunner:
    """Drives the Apply/Cancel buttons and the progress bar around one logic call."""

    def __init__(self, progressBar: Any, applyButton: Any, cancelButton: Any) -> None:
        self.progressBar = progressBar
        self.applyButton = applyButton
        self.cancelButton = cancelButton
        self.running = False
        self._cancelRequested = False
        self.cancelButton.enabled = False

    def progress(self, fraction: float, message: str) -> None:
        self.progressBar.value = round(100 * max(0.0, min(1.0, fraction)))
        self.progressBar.format = f"{message} (%p%)"
        slicer.app.processEvents()

    def cancelled(self) -> bool:
        return self._cancelRequested

    def requestCancel(self) -> None:
        self._cancelRequested = True
        self.progressBar.format = "Cancelling..."

    def run(self, call: Callable[[Callable[[float, str], None], Callable[[], bool]], Any]) -> Any:
        """``call(progress, cancel)``; returns its result, or None after an error or Cancel."""
        if self.running:
            return None
        self.running, self._cancelRequested = True, False
        applyWasEnabled = self.applyButton.enabled
        self.applyButton.enabled, self.cancelButton.enabled = False, True
        qt.QApplication.setOverrideCursor(qt.Qt.BusyCursor)
        try:
            return call(self.progress, self.cancelled)
        except CancelledError:
            self.progressBar.format = "Cancelled"
        except InputError as exc:
            self.progressBar.format = "Check the inputs"
            slicer.util.warningDisplay(str(exc), windowTitle="MSK AI")
        except Exception as exc:
            logging.exception("MSK AI run failed")
            self.progressBar.format = "Failed"
            slicer.util.errorDisplay(f"Failed: {exc}", windowTitle="MSK AI")
        finally:
            qt.QApplication.restoreOverrideCursor()
            self.running = False
            self.applyButton.enabled, self.cancelButton.enabled = applyWasEnabled, False
        return None
