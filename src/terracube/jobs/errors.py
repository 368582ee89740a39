"""The openEO API's batch job and user-defined process errors (errors.json), as ``OpenEOError`` subclasses.

They live here rather than in ``terracube.errors`` because only the jobs room raises them; the
codes and statuses are the spec's, so a client can match on ``code`` as with any other backend.
"""

from __future__ import annotations

from terracube.errors import OpenEOError


class JobNotFound(OpenEOError):
    code = "JobNotFound"
    status = 404

    def __init__(self, job_id: str):
        super().__init__(f"The batch job '{job_id}' does not exist.")


class JobLocked(OpenEOError):
    code = "JobLocked"
    status = 400

    def __init__(self, job_id: str, status: str):
        super().__init__(
            f"Batch job '{job_id}' is {status}: it can't be modified or deleted meanwhile. Cancel it first (DELETE /jobs/{job_id}/results)."
        )


class JobNotFinished(OpenEOError):
    code = "JobNotFinished"
    status = 400

    def __init__(self, job_id: str, status: str):
        super().__init__(f"Batch job '{job_id}' is {status}: it has not finished computing its results yet. Please try again later.")


class JobNotStarted(OpenEOError):
    code = "JobNotStarted"
    status = 400

    def __init__(self, job_id: str, status: str = "created"):
        super().__init__(f"Batch job '{job_id}' is {status}: it must be started first (POST /jobs/{job_id}/results).")


class ResultLinkExpired(OpenEOError):
    code = "ResultLinkExpired"
    status = 410

    def __init__(self) -> None:
        super().__init__("The link to the batch job result has expired. Please request the results again (GET /jobs/{job_id}/results).")


class ResultLinkInvalid(OpenEOError):
    """Not in errors.json: a signature that does not match is a plain 403, named for what it is."""

    code = "PermissionsInsufficient"
    status = 403

    def __init__(self) -> None:
        super().__init__("The signature of this result link is not valid. Request the results again (GET /jobs/{job_id}/results).")


class FileNotFound(OpenEOError):
    code = "FileNotFound"
    status = 404

    def __init__(self, name: str):
        super().__init__(f"File '{name}' does not exist in the results of this job.")


class PropertyNotEditable(OpenEOError):
    code = "PropertyNotEditable"
    status = 400

    def __init__(self, name: str):
        super().__init__(f"The specified property '{name}' is read-only.")


class NoDataForUpdate(OpenEOError):
    code = "NoDataForUpdate"
    status = 400

    def __init__(self) -> None:
        super().__init__("No data specified to be updated: send at least one of title, description, process, plan, budget, log_level.")


class BudgetInvalid(OpenEOError):
    code = "BudgetInvalid"
    status = 400

    def __init__(self, budget) -> None:
        super().__init__(f"The specified budget {budget!r} is invalid: give a number greater than 0, or null.")


class ProcessGraphNotFound(OpenEOError):
    code = "ProcessGraphNotFound"
    status = 404

    def __init__(self, process_graph_id: str):
        super().__init__(f"The user-defined process '{process_graph_id}' does not exist (GET /process_graphs lists yours).")


class ProcessGraphIdInvalid(OpenEOError):
    code = "ProcessGraphIdInvalid"
    status = 400

    def __init__(self, process_graph_id: str):
        super().__init__(
            f"The identifier '{process_graph_id}' of the user-defined process is invalid: use 1 to 255 letters, digits and underscores."
        )
