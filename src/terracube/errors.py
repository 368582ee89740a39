"""openEO errors as data.

Every failure a user can cause is an ``OpenEOError`` carrying the openEO API's error code and the
HTTP status it maps to; the api room turns it into the ``{"id", "code", "message", "links"}``
object. Rooms below the api raise these and never think about HTTP beyond the status number.
"""

from __future__ import annotations

import string
import sys
import uuid


class OpenEOError(Exception):
    code: str = "Internal"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, node_id: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.node_id = node_id
        self.id = uuid.uuid4().hex

    def to_dict(self) -> dict:
        return {"id": self.id, "code": self.code, "message": self.message, "links": []}


ECHO_LENGTH = 100


def shortened(value: object, length: int = ECHO_LENGTH) -> str:
    """A user's id or name as an error message echoes it: cut to ``length`` characters with an ellipsis."""
    text = str(value)
    return text if len(text) <= length else text[: length - 1] + "…"


def _error(name: str, status: int, message: str | None = None) -> type[OpenEOError]:
    """An error class whose openEO code is its name.

    Without ``message`` it takes the message as its argument. With one (a template like the
    ``message`` of errors.json, ``{field}`` placeholders) it takes the fields, in the order they
    first appear: ``JobNotFound = _error("JobNotFound", 404, "The batch job '{job_id}' does not exist.")``
    is raised as ``JobNotFound(job_id)``.
    """
    namespace: dict = {"code": name, "status": status, "__module__": sys._getframe(1).f_globals["__name__"]}
    if message is not None:
        fields = tuple(dict.fromkeys(field for _, field, _, _ in string.Formatter().parse(message) if field))

        def __init__(self, *values, **kw):
            if len(values) != len(fields):
                raise TypeError(f"{name} takes {', '.join(fields) or 'no arguments'}, got {len(values)} values")
            OpenEOError.__init__(self, message.format(**dict(zip(fields, values))), **kw)

        namespace["__init__"] = __init__
    return type(name, (OpenEOError,), namespace)


# The codes are the openEO API's (errors.json); the names match so a reader can grep both ways.
BadRequest = _error("BadRequest", 400)
ProcessGraphMissing = _error("ProcessGraphMissing", 400)
ProcessGraphInvalid = _error("ProcessGraphInvalid", 400)
ProcessUnsupported = _error("ProcessUnsupported", 400)
ProcessParameterRequired = _error("ProcessParameterRequired", 400)
ProcessParameterInvalid = _error("ProcessParameterInvalid", 400)
ProcessParameterUnsupported = _error("ProcessParameterUnsupported", 400)
CollectionNotFound = _error("CollectionNotFound", 404)
BandFilterNotFound = _error("BandFilterNotFound", 400)
FormatUnsupported = _error("FormatUnsupported", 400)
NoDataAvailable = _error("NoDataAvailable", 400)
# Synchronous processing has a size limit; the message tells the user to use a batch job.
PayloadTooLarge = _error("PayloadTooLarge", 413)
# A graph or JSON body beyond the server's limits (settings max_graph_nodes, max_graph_depth,
# max_json_depth), or whose evaluation would call more processes than allowed (max_evaluations).
ProcessGraphComplexity = _error("ProcessGraphComplexity", 400)
FilePathInvalid = _error("FilePathInvalid", 400)
# Synchronous processing has a bounded pool and a time limit (api/sync_pool.py); both point to batch jobs.
InfrastructureBusy = _error("InfrastructureBusy", 503)
RequestTimeout = _error("RequestTimeout", 408)
# A file cannot be read as the format the user named (load_url, load_uploaded_files).
FormatUnsuitable = _error("FormatUnsuitable", 400)
# Accounts: no token (401), a bad or expired one (403: the openEO client then logs in again),
# a valid one whose user may not do this (403).
AuthenticationRequired = _error("AuthenticationRequired", 401)
TokenInvalid = _error("TokenInvalid", 403)
PermissionsInsufficient = _error("PermissionsInsufficient", 403)


class FileNotFound(OpenEOError):
    """errors.json's ``FileNotFound`` (404), for every missing file: an upload, a job's result
    asset, a URL that answers 404, a model file. ``hint`` says where to look instead."""

    code = "FileNotFound"
    status = 404

    def __init__(self, file: str, hint: str = "", **kw):
        super().__init__(f"File '{file}' does not exist." + (f" {hint}" if hint else ""), **kw)


class ProcessError(OpenEOError):
    """An exception a process's spec declares (e.g. ``DimensionNotAvailable``), raised at run time."""

    status = 400

    def __init__(self, code: str, message: str, **kw):
        super().__init__(message, code=code, **kw)

# Secondary services (``/services``, the services room). A tile's URL carries the service id as its
# only credential, so another user's id and a disabled or deleted service all answer ServiceNotFound.
ServiceNotFound = _error("ServiceNotFound", 404, "Service '{identifier}' does not exist.")
ServiceUnsupported = _error("ServiceUnsupported", 400, "Service type '{type}' is not supported (GET /service_types lists XYZ and WMTS).")
# The errors of a service's configuration and tiles are the services room's own: terracube/services/errors.py.
