"""The conformance runner: every official openEO process test case against terracube.

``python -m terracube.conformance`` runs the cases of an openeo-processes checkout (see ``suite``)
against a target: terracube in process (``inprocess``), a live terracube server over HTTP
(``http``) or openeo-processes-dask, the reference xarray implementation (``reference``). The
outcomes go to ``docs/conformance.json`` and, as tables, to ``docs/conformance.md`` (``report``).
CI runs the in-process target and fails when the stable pass rate drops below the recorded figure.
"""
