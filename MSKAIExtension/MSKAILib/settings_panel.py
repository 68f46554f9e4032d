"""Slicer-only: the MSK AI settings and diagnostics UI (Resources/UI/MSKAISettings.ui).

The same controller drives the panel in Application Settings and the hidden MSKAI
module's widget. Settings go to ``~/.mskai/settings.json`` (not Slicer.ini) so the
``mskai`` command and Slicer share one device and model folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import ctk
import qt
import slicer

UI_FILE = Path(__file__).resolve().parent.parent / "Resources" / "UI" / "MSKAISettings.ui"


class MSKAISettingsController:
    """Keeps the settings widgets and the JSON settings file in step; runs diagnostics."""

    def __init__(self, uiWidget: Any) -> None:
        from mskai.config import DEVICES

        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self._process = None
        self._loading = False
        self.ui.deviceComboBox.clear()
        for device in DEVICES:
            self.ui.deviceComboBox.addItem(device)
        self.ui.modelDirPathLineEdit.filters = ctk.ctkPathLineEdit.Dirs
        self.ui.diagnosticsTextEdit.readOnly = True

        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.saveFromGui)
        self.ui.modelDirPathLineEdit.connect("currentPathChanged(QString)", self.saveFromGui)
        self.ui.refreshDiagnosticsButton.connect("clicked(bool)", self.refreshDiagnostics)
        self.ui.copyDiagnosticsButton.connect("clicked(bool)", self.copyDiagnostics)
        self.ui.verifyModelsButton.connect("clicked(bool)", self.onVerifyModels)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.installDependencies)
        self.loadToGui()

    # --- settings -----------------------------------------------------------------------

    def loadToGui(self) -> None:
        from mskai.config import ENV_DEVICE, ENV_MODEL_DIR, load_settings

        settings = load_settings(use_env=False)
        self._loading = True
        try:
            self.ui.deviceComboBox.currentText = settings.device
            self.ui.modelDirPathLineEdit.currentPath = str(settings.model_dir)
        finally:
            self._loading = False
        overrides = [f"{name}={os.environ[name]}" for name in (ENV_DEVICE, ENV_MODEL_DIR)
                     if os.environ.get(name)]
        self.ui.envOverrideLabel.text = (
            "Overridden by the environment: " + ", ".join(overrides) if overrides else "")

    def saveFromGui(self, *_args: Any) -> None:
        if self._loading:
            return
        from mskai.config import Settings, save_settings
        from mskai.errors import InputError

        try:
            save_settings(Settings(device=self.ui.deviceComboBox.currentText,
                                   model_dir=Path(self.ui.modelDirPathLineEdit.currentPath)))
        except (InputError, OSError) as exc:
            slicer.util.errorDisplay(f"MSK AI settings were not saved: {exc}")

    # --- diagnostics --------------------------------------------------------------------

    def refreshDiagnostics(self) -> None:
        from mskai.diagnostics import collect_diagnostics, format_diagnostics

        with slicer.util.tryWithErrorDisplay("Collecting diagnostics failed.", waitCursor=True):
            self.ui.diagnosticsTextEdit.setPlainText(format_diagnostics(collect_diagnostics()))

    def copyDiagnostics(self) -> None:
        qt.QApplication.clipboard().setText(self.ui.diagnosticsTextEdit.toPlainText())

    def installDependencies(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        if ensureDependenciesInSlicer():
            slicer.util.infoDisplay("All MSK AI Python dependencies are installed.")
        self.refreshDiagnostics()

    def onVerifyModels(self) -> None:
        """Run ``mskai models verify`` in a QProcess so the GUI stays live; click again to stop."""
        if self._process is not None:
            self._process.kill()
            return
        from mskai.diagnostics import verify_models_command

        command, extraEnv = verify_models_command()
        command[0] = shutil.which("PythonSlicer") or command[0]
        environment = qt.QProcessEnvironment.systemEnvironment()
        for key, value in extraEnv.items():
            environment.insert(key, value)
        self._process = qt.QProcess()
        self._process.setProcessEnvironment(environment)
        self._process.setProcessChannelMode(qt.QProcess.MergedChannels)
        self._process.connect("finished(int,QProcess::ExitStatus)", self._onVerifyFinished)
        self.ui.verifyModelsButton.text = "Stop verification"
        self.ui.diagnosticsTextEdit.appendPlainText("\n$ " + " ".join(command[1:]))
        self._process.start(command[0], command[1:])
        if not self._process.waitForStarted(5000):
            self.ui.diagnosticsTextEdit.appendPlainText(
                f"Could not start {command[0]}: {self._process.errorString()}")
            self._process = None
            self.ui.verifyModelsButton.text = "Verify models"

    def _onVerifyFinished(self, exitCode: int, _exitStatus: Any = None) -> None:
        output = self._process.readAll().data().decode("utf-8", "replace")
        self.ui.diagnosticsTextEdit.appendPlainText(output.strip() or "(no output)")
        self.ui.diagnosticsTextEdit.appendPlainText(
            "Models verified." if exitCode == 0 else f"Verification failed (exit code {exitCode}).")
        self._process = None
        self.ui.verifyModelsButton.text = "Verify models"


class MSKAISettingsPanel(ctk.ctkSettingsPanel):
    """The "MSK AI" page of Edit > Application Settings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ctk.ctkSettingsPanel.__init__(self, *args, **kwargs)
        uiWidget = slicer.util.loadUI(str(UI_FILE))
        layout = qt.QVBoxLayout(self)
        layout.addWidget(uiWidget)
        self.controller = MSKAISettingsController(uiWidget)
