import pytest

from snnax_nas import jobs
from snnax_nas import studies


def test_jobs_and_studies_import_their_modules_by_name_and_refuse_others():
  assert jobs.get("score").__name__ == "snnax_nas.jobs.score"
  assert studies.correlate.__name__ == "snnax_nas.studies.correlate"  # no explicit import
  with pytest.raises(ValueError, match="unknown job 'compare'; jobs: search, score"):
    jobs.get("compare")
  with pytest.raises(ValueError, match="unknown study 'train'; studies: compare"):
    studies.get("train")
  with pytest.raises(AttributeError, match="'snnax_nas.studies' has no attribute 'nope'"):
    studies.nope  # noqa: B018
