"""Settings dialog: the project's method, preprocessing and limit parameters, and the user's
preferences, in tabs.

The method form is generated from `MethodSettings`' fields, so a new parameter appears here
without GUI work; the preprocessing parameters are shown read-only once the pool holds spectra
(the core refuses to change them then). Values go through the same core calls as
`vo-al settings --set key=value` (`Project.change_settings`): validated, saved atomically, all or
nothing; an invalid value is named in the dialog and nothing is saved.
"""

from __future__ import annotations

from dataclasses import fields

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                             QLabel, QLineEdit, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from vo_al.core.base.errors import VoAlError
from vo_al.core.learning.device import PRECISIONS
from vo_al.core.learning.strategies import STRATEGIES
from vo_al.core.session.preferences import UserPreferences, preferences_path, update_preferences

# fields whose values are a fixed set: a menu, never a typo
_CHOICES = {"strategy": STRATEGIES, "scoring_precision": PRECISIONS}
# what an empty or unfamiliar field means, shown in it while it is empty
_PLACEHOLDERS = {"scoring_scheduler": "empty: this computer; tcp://host:8786: a Dask cluster "
                                      "whose workers see this project folder"}


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _editor(value, choices=None) -> QWidget:
    if choices is not None:
        box = QComboBox()
        box.addItems(sorted(choices))
        box.setCurrentText(str(value))
        return box
    if isinstance(value, bool):
        box = QCheckBox()
        box.setChecked(value)
        return box
    return QLineEdit(_text(value))


def _value(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    return editor.text().strip()


class SettingsForm(QWidget):
    """One form row per field of a settings dataclass; `changes()` returns what was edited."""

    def __init__(self, settings, read_only: bool = False, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.read_only = read_only
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout(self)
        for f in fields(settings):
            value = getattr(settings, f.name)
            editor = _editor(value, _CHOICES.get(f.name))
            if isinstance(editor, QLineEdit) and f.name in _PLACEHOLDERS:
                editor.setPlaceholderText(_PLACEHOLDERS[f.name])
                editor.setToolTip(_PLACEHOLDERS[f.name])
            editor.setEnabled(not read_only)
            editor.setObjectName(f.name)
            self.editors[f.name] = editor
            form.addRow(f.name.replace("_", " "), editor)

    def changes(self) -> dict:
        """{field: new value (text or bool)} for the fields whose shown value was edited."""
        out = {}
        for name, editor in self.editors.items():
            shown = _value(editor)
            current = getattr(self.settings, name)
            if shown != (current if isinstance(shown, bool) else _text(current)):
                out[name] = shown
        return out


class SettingsDialog(QDialog):
    """Edit `project`'s method settings (when a project is open) and the user's preferences."""

    def __init__(self, project, prefs: UserPreferences, parent=None):
        super().__init__(parent)
        self.setWindowTitle("vo-al — settings")
        self.project = project
        self.prefs = prefs
        self.error = QLabel("")
        self.error.setStyleSheet("color:#b00020")
        self.error.setWordWrap(True)
        tabs = QTabWidget()
        self.method_form = self.preprocess_form = self.limits_form = None
        if project is not None:
            self.method_form = SettingsForm(project.settings.method)
            tabs.addTab(self.method_form, "Method (this project)")
            frozen = len(project.pool) > 0
            self.preprocess_form = SettingsForm(project.settings.preprocess, read_only=frozen)
            tabs.addTab(self.preprocess_form, "Preprocessing" + (" (fixed: pool filled)"
                                                                 if frozen else ""))
            self.limits_form = SettingsForm(project.settings.limits)
            tabs.addTab(self.limits_form, "Limits (this project)")
        self.label_keys = QLineEdit(prefs.label_keys)
        self.label_keys.setMaxLength(3)
        self.prefetch = QSpinBox()
        self.prefetch.setRange(0, 100)
        self.prefetch.setValue(int(prefs.prefetch))
        self.blind_precision_sample = QCheckBox(
            "hide the probabilities while I label the precision sample")
        self.blind_precision_sample.setToolTip(
            "seen, the model's probabilities can bias your verdicts, and so the precision "
            "estimate made from them; the oracle batch still shows them")
        self.blind_precision_sample.setChecked(prefs.blind_precision_sample)
        personal = QWidget()
        form = QFormLayout(personal)
        form.addRow("label keys (non-target, single, double)", self.label_keys)
        form.addRow("spectra read ahead", self.prefetch)
        form.addRow("blind precision sample", self.blind_precision_sample)
        form.addRow("saved in", QLabel(str(preferences_path())))
        tabs.addTab(personal, "Preferences (you)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.tabs = tabs

    def apply(self) -> bool:
        """Validate and save everything, or nothing; on error the dialog stays open naming it."""
        keys, prefetch = self.label_keys.text(), self.prefetch.value()
        blind = self.blind_precision_sample.isChecked()
        try:
            UserPreferences(label_keys=keys, prefetch=prefetch,
                            blind_precision_sample=blind).validate()
            if self.project is not None:
                pre = {} if self.preprocess_form.read_only else self.preprocess_form.changes()
                self.project.change_settings(self.method_form.changes(), pre,
                                             self.limits_form.changes())

            def change(p):
                p.label_keys, p.prefetch, p.blind_precision_sample = keys, prefetch, blind

            saved = update_preferences(change)
        except (VoAlError, OSError) as exc:
            self.error.setText(str(exc))
            return False
        self.prefs.label_keys, self.prefs.prefetch = saved.label_keys, saved.prefetch
        self.prefs.blind_precision_sample = saved.blind_precision_sample
        self.accept()
        return True
