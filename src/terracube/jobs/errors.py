"""The openEO API's batch job and user-defined process errors (errors.json), as ``OpenEOError`` subclasses.

They live here rather than in ``terracube.errors`` because only the jobs room raises them; the
codes and statuses are the spec's, so a client can match on ``code`` as with any other backend.
Each message's fields are the error's arguments, in order: ``JobLocked(job_id, status)``.
A missing result asset is the one ``terracube.errors.FileNotFound``.
"""

from __future__ import annotations

from terracube.errors import OpenEOError, _error

JobNotFound = _error("JobNotFound", 404, "The batch job '{job_id}' does not exist.")
JobLocked = _error(
    "JobLocked", 400,
    "Batch job '{job_id}' is {status}: it can't be modified or deleted meanwhile. Cancel it first (DELETE /jobs/{job_id}/results).",
)
JobNotFinished = _error(
    "JobNotFinished", 400, "Batch job '{job_id}' is {status}: it has not finished computing its results yet. Please try again later."
)
JobNotStarted = _error("JobNotStarted", 400, "Batch job '{job_id}' is {status}: it must be started first (POST /jobs/{job_id}/results).")
ResultLinkExpired = _error(
    "ResultLinkExpired", 410, "The link to the batch job result has expired. Please request the results again (GET /jobs/{{job_id}}/results)."
)
PropertyNotEditable = _error("PropertyNotEditable", 400, "The specified property '{name}' is read-only.")
NoDataForUpdate = _error(
    "NoDataForUpdate", 400, "No data specified to be updated: send at least one of title, description, process, plan, budget, log_level."
)
BudgetInvalid = _error("BudgetInvalid", 400, "The specified budget {budget!r} is invalid: give a number greater than 0, or null.")
ProcessGraphNotFound = _error(
    "ProcessGraphNotFound", 404, "The user-defined process '{process_graph_id}' does not exist (GET /process_graphs lists yours)."
)
ProcessGraphIdInvalid = _error(
    "ProcessGraphIdInvalid", 400,
    "The identifier '{process_graph_id}' of the user-defined process is invalid: use 1 to 255 letters, digits and underscores.",
)


class ResultLinkInvalid(OpenEOError):
    """Not in errors.json: a signature that does not match is a plain 403, named for what it is."""

    code = "PermissionsInsufficient"
    status = 403

    def __init__(self) -> None:
        super().__init__("The signature of this result link is not valid. Request the results again (GET /jobs/{job_id}/results).")
