"""Projects: code plus an ``MLproject`` file that says how to run it, run as a recorded run.

``cairn.projects.run(uri, entry_point, parameters)`` fetches the project (a folder or a git
repository at a commit), checks its parameters, prepares its environment (a uv virtual
environment cached by the hash of ``python_env.yaml``, or this interpreter) and runs the
command locally or as a Spark barrier stage, recording source, commit, parameters, environment,
command, output and exit status. ``cairn.projects.reproduce(run_id)`` runs it again.
"""

from __future__ import annotations

from cairn.projects.reproduce import reproduce
from cairn.projects.runner import ProjectRun, run

__all__ = ["ProjectRun", "reproduce", "run"]
