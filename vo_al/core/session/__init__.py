"""A project and its active-learning session: what a person's work is made of, stored durably.

- `project`: the project folder (settings, training set, link to the pool)
- `settings`: `ProjectSettings` (method + preprocessing), validated, saved as JSON
- `loop`: `ActiveLearningSession`, the paper's loop one durable step at a time
- `store`: the session's SQLite store (every label its own transaction)
- `labels`: class labels as people and files write them
- `candidates`: the candidates of a session (`session_candidates`), one owner for every caller
- `preferences`: the user's preferences across projects (keys, read-ahead, recent projects)
"""

from vo_al.core.session.loop import (ACTIONS, DONE, ESTIMATE, FINISH, LABEL, PRECISION_PURPOSE,
                                     QUERY, QUERY_PURPOSE, SCORE, TRAIN, ActiveLearningSession,
                                     BatchLabel)
from vo_al.core.session.project import Project

__all__ = ["ACTIONS", "DONE", "ESTIMATE", "FINISH", "LABEL", "PRECISION_PURPOSE", "QUERY",
           "QUERY_PURPOSE", "SCORE", "TRAIN", "ActiveLearningSession", "BatchLabel", "Project"]
