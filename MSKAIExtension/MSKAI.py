"""MSKAI: hidden module of the MSK AI extension.

It carries the shared ``mskai`` core and ``MSKAILib`` into Slicer (see CMakeLists.txt),
adds the "MSK AI" page to Application Settings once Slicer has started, and offers the
settings and diagnostics panel as its widget (``slicer.util.selectModule("MSKAI")``).
Nothing heavy is imported here: torch and MONAI load only when diagnostics ask for them.
"""

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)


class MSKAI(ScriptedLoadableModule):
    """Hidden module: settings page, diagnostics and the shared Python packages."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MSK AI"
        self.parent.categories = ["MSK AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["MSK AI contributors"]
        self.parent.hidden = True
        self.parent.helpText = """
Settings (device, model folder) and diagnostics (versions, device, paths, model check) for
the MSK AI modules: Fracture Detect, Cartilage Quant and Tumor Seg. The settings are also
under Edit > Application Settings > MSK AI and are shared with the <code>mskai</code> command.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""
        self.settingsPanel = None
        slicer.app.connect("startupCompleted()", self.onStartupCompleted)

    def onStartupCompleted(self) -> None:
        """Add the settings page; skipped without a main window (batch and test runs)."""
        if slicer.app.commandOptions().noMainWindow or self.settingsPanel is not None:
            return
        from MSKAILib.settings_panel import MSKAISettingsPanel

        self.settingsPanel = MSKAISettingsPanel()
        slicer.app.settingsDialog().addPanel("MSK AI", self.settingsPanel)


class MSKAIWidget(ScriptedLoadableModuleWidget):
    """Settings and diagnostics, the same UI as the Application Settings page."""

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from MSKAILib.settings_panel import MSKAISettingsController

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MSKAISettings.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self.controller = MSKAISettingsController(uiWidget)
        self.layout.addStretch(1)

    def enter(self) -> None:
        self.controller.loadToGui()
        if not self.ui.diagnosticsTextEdit.toPlainText():
            self.controller.refreshDiagnostics()


class MSKAITest(ScriptedLoadableModuleTest):
    """Inside Slicer: settings round trip and diagnostics of the embedded Python."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_settingsRoundTrip()
        self.test_diagnostics()

    def test_settingsRoundTrip(self) -> None:
        import tempfile
        from pathlib import Path

        from mskai.config import Settings, load_settings, save_settings

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "settings.json"
            settings = Settings(device="cpu", model_dir=Path(folder) / "models")
            save_settings(settings, path)
            self.assertEqual(load_settings(path, use_env=False), settings)

    def test_diagnostics(self) -> None:
        from mskai.diagnostics import NOT_INSTALLED, collect_diagnostics

        info = collect_diagnostics(packages=["numpy", "mskai_no_such_package"],
                                   include_device=False)
        self.assertEqual(info["versions"]["Slicer"], slicer.app.applicationVersion)
        self.assertNotEqual(info["versions"]["numpy"], NOT_INSTALLED)
        self.assertEqual(info["versions"]["mskai_no_such_package"], NOT_INSTALLED)
        self.delayDisplay("MSKAI test passed")
