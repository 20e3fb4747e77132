"""The compare study: the accuracy-vs-memory table of SpikeNAS, SNASNet random
search and LightSNN, as ``run(config, workdir)``; ``launch.compare`` is its
command line; :mod:`.study` runs it from its :mod:`.stages` and writes its
:mod:`.tables`.

Writes to ``workdir``: ``config.json`` (the study's config), ``search/``,
``train/`` (each stage's own workdir), ``stages/`` (when each stage finished,
its time and its equivalent command), ``logs/`` (each stage's output),
``results.csv``, ``results.md`` and ``accuracy_vs_memory.png``. Resumable:
finished stages are not rerun and keep their measured times.
"""

from __future__ import annotations

from snnax_nas.studies.compare import study


def report(result: tuple[list, str], workdir: str) -> str:
  """The Markdown table ``launch.compare`` prints."""
  del workdir
  return result[1].rstrip("\n")


def run(config, workdir: str) -> tuple[list[dict], str]:
  """Runs (or resumes) the study (:func:`snnax_nas.studies.compare.study.run_study`).

  Args:
    config: a :mod:`snnax_nas.configs.compare` config.
    workdir: the study's directory.

  Returns:
    ``(rows, markdown)``: one dict per found network and the table.

  Raises:
    ValueError: a bad config or a workdir holding another run.
    snnax_nas.studies.compare.stages.StageError: a stage failed (fix it and rerun to resume).
  """
  if not workdir:
    raise ValueError("--workdir is required")
  return study.run_study(config, workdir)
