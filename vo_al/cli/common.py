"""What the `vo-al` commands share: opening a project's session, running a long job with a text
bar, `--set KEY=VALUE` settings, and adding a command to the parser.

Every module of vo_al.cli opens a project through `open_session` (never Project.open itself), so
each command sees the project the same way. The core is imported inside the functions: a
session pulls in the learning stack (over a second), which `vo-al --help`, `vo-al gui` and the
VO commands do not need.
"""

from __future__ import annotations

from vo_al.core.base.progress import run_with_text_bar as run_job

__all__ = ["WHERE_HELP", "add_command", "apply_sets", "open_session", "parse_sets", "run_job"]

# the filter of `--where` is the app's table filter (core.export.filters)
WHERE_HELP = ("only the rows this filter keeps: words searched in the text columns and "
              "comparisons joined by 'and', e.g. \"p_double > 0.9 and snr > 20\"")


def open_session(folder):
    """The ActiveLearningSession of the project in `folder` (its project: `.project`).

    ProjectError names the folder when it is not a project."""
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.core.session.project import Project

    return ActiveLearningSession(Project.open(folder))


def parse_sets(pairs) -> dict[str, dict]:
    """key=value pairs -> {section: {key: value}} for the sections of ProjectSettings
    ('method', 'preprocess', 'limits'); a key names its section (they share no names)."""
    from dataclasses import fields

    from vo_al.core.base.errors import ParameterError
    from vo_al.core.session.settings import ProjectSettings

    section_of = {f.name: name for name, section in ProjectSettings.default().sections().items()
                  for f in fields(section)}
    changes: dict[str, dict] = {name: {} for name in ProjectSettings.default().sections()}
    for pair in pairs or []:
        if "=" not in pair:
            raise ParameterError("--set", pair, "must be key=value")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in section_of:
            raise ParameterError(key, value, "unknown setting")
        changes[section_of[key]][key] = value
    return changes


def apply_sets(settings, pairs):
    """`settings` (ProjectSettings) changed by the --set pairs, validated."""
    from vo_al.core.session.settings import update_settings

    sections = settings.sections()
    for name, changes in parse_sets(pairs).items():
        update_settings(sections[name], **changes)
    settings.validate()
    return settings


def add_command(sub, name, func, help, project=True):
    """A subcommand `name` running `func(args)`, its help also its description; with
    `project`, its first argument is the project folder."""
    p = sub.add_parser(name, help=help, description=help)
    if project:
        p.add_argument("project", help="project folder")
    p.set_defaults(func=func)
    return p
