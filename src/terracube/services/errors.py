"""The errors of drawing map tiles, with the openEO API's codes where it has one (errors.json)."""

from __future__ import annotations

from terracube.errors import _error

# A configuration setting or a per-request rendering option with a bad value, or one this service type does not know.
ServiceConfigInvalid = _error("ServiceConfigInvalid", 400, "The value passed for the service parameter '{parameter}' is invalid: {reason}")
ServiceConfigUnsupported = _error("ServiceConfigUnsupported", 400, "Service parameter '{parameter}' is not supported.")
# A tile the service does not draw: a zoom level outside its range (the zoom budget), a column or
# row that does not exist at that zoom. Not in errors.json, which has no tile errors.
TileOutOfRange = _error("TileOutOfRange", 400)
# A user's services beyond the server's ``max_services_per_user``. Not in errors.json; 400 as its
# StorageQuotaExceeded, the API's error for a user's stored things beyond a quota.
ServiceLimitExceeded = _error(
    "ServiceLimitExceeded", 400,
    "You have {limit} services, the most this server keeps for one user (setting max_services_per_user). "
    "Delete one you no longer need (DELETE /services/{{service_id}}) before making another.",
)
