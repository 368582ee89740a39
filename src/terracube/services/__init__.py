"""Secondary services (openEO's ``/services``): XYZ and WMTS map tiles drawn from a process graph.

A service is a stored process graph plus a rendering configuration, owned by its user like a job.
Its tiles are drawn through ``terracube.execute`` with the load's extent pushed down to the tile,
rendered to PNG or JPEG and cached on disk. See docs/services.md.
"""
